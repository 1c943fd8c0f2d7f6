"""Real data: the WorldCereal CIB patch 00002806639B424A (640 x 640 m near Ypres, Belgium, 31UDS): Sentinel-2 L2A
at 10 m and 20 m with its scene classification (118 dates, 2017-08..2018-11) and a rasterised reference of the
Flemish LPIS 2018 parcels (`OUTPUT_POLY-110`, WorldCereal land-cover codes).

The 2018 monthly median composites (clouds masked by SCL) are made with hrlc's compositing code and turned into
hrlc's feature stack, written into a lake; training points drawn from the reference, each carrying its parcel,
go through the classification processor with parcel-grouped validation. Its reported accuracy must be that of
the map on the parcels it held out, measured against the reference raster pixel by pixel (issue 14: a split by
points put points of one field on both sides and reported 0.978 for a map 0.75 accurate on unseen parcels).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from scipy import ndimage
from shapely.geometry import Point, box, mapping

from hrlc.catalog.items import file_item
from hrlc.catalog.static import StaticCatalog
from hrlc.chain import features, optical
from hrlc.lake import layout
from hrlc.lake.store import LocalStore
from hrlc.processors.base import Context
from hrlc.processors.classification import Classification, accuracy_keys, map_keys, report_key
from hrlc.products.netcdf import write_feature_stack
from hrlc.training.samples import read_training, sample_pixels, split_holdout, validation_groups

PATCH = Path("data/worldcereal-cib/00002806639B424A")
STEM = "00002806639B424A_32631_2017-08-01_2018-11-30.nc"
YEAR = 2018
CRS = "EPSG:32631"
#: WorldCereal v1 land-cover codes of the patch -> HRLC: annual cropland, grassland (managed), built-up
LC_TO_HRLC = {11: 80, 13: 70, 60: 130}
BANDS_10M = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}
BANDS_20M = {
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B8A": "nir08",
    "B11": "swir16",
    "B12": "swir22",
}
POINTS = 1200


@pytest.fixture(scope="module")
def reference(shared: Path) -> tuple[np.ndarray, np.ndarray, Affine]:
    """The reference in HRLC codes (0: no parcel), its parcels (connected areas of one class, 0: none) and
    the grid's transform."""
    ds = xr.open_dataset(shared / PATCH / f"OUTPUT_POLY-110_10m_{STEM}")
    lc = np.nan_to_num(ds["LC"].values).astype(np.int64)
    codes = np.zeros(lc.shape, dtype=np.int64)
    for wc, hrlc in LC_TO_HRLC.items():
        codes[lc == wc] = hrlc
    parcels = np.zeros(lc.shape, dtype=np.int64)
    for hrlc in LC_TO_HRLC.values():
        label, n = ndimage.label(codes == hrlc)
        parcels[label > 0] = label[label > 0] + parcels.max()
    x0, _, _, y1 = ds.attrs["bounds"]
    return codes, parcels, Affine(10.0, 0.0, float(x0), 0.0, -10.0, float(y1))


def _bands(path: Path, names: dict[str, str], repeat: int) -> xr.Dataset:
    ds = xr.open_dataset(path, mask_and_scale=False)
    out = {
        new: (("time", "y", "x"), np.repeat(np.repeat(ds[old].values, repeat, axis=1), repeat, axis=2))
        for old, new in names.items()
    }
    return xr.Dataset(out, coords={"time": ds["timestamp"].values})


@pytest.fixture(scope="module")
def lake(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    """A lake holding the patch's 2018 feature stack (hrlc's monthly median composites and features) and its
    item, as the features step leaves it."""
    d = shared / PATCH
    cube = _bands(d / f"S2_L2A_10m_{STEM}", BANDS_10M, 1).merge(
        _bands(d / f"S2_L2A_20m_{STEM}", BANDS_20M, 2)
    )
    scl = xr.open_dataset(d / f"S2_L2A_20m_{STEM}", mask_and_scale=False)["SCL"].values
    scl = np.repeat(np.repeat(scl, 2, axis=1), 2, axis=2)
    invalid = xr.DataArray(optical.scl_mask(scl), dims=("time", "y", "x"))
    composite = optical.composite(cube, invalid, year=YEAR, period="month")
    stack = features.feature_stack(composite.drop_vars("valid_count"))
    ny, nx = stack.sizes["y"], stack.sizes["x"]
    transform = Affine(10.0, 0.0, 501360.0, 0.0, -10.0, 5629680.0)
    stack = stack.assign_coords(
        x=transform.c + 10.0 * (np.arange(nx) + 0.5), y=transform.f - 10.0 * (np.arange(ny) + 0.5)
    )

    store = LocalStore(tmp_path_factory.mktemp("worldcereal") / "lake")
    key = layout.key("features", stack="optical_sentinel2", year=YEAR)
    with store.writing(key) as tmp:
        write_feature_stack(stack, tmp, crs=CRS, transform=transform, year=YEAR)
    footprint = box(2.9, 50.8, 3.1, 50.9)  # the patch's neighbourhood, lon/lat
    item = file_item(
        store,
        key,
        geometry=mapping(footprint),
        bbox=list(footprint.bounds),
        start=dt.datetime(YEAR, 1, 1, tzinfo=dt.UTC),
        end=dt.datetime(YEAR, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
        processor="features",
        processor_version="test",
        media_type="application/netcdf",
    )
    StaticCatalog(store).add(item)
    return store


def training_points(codes: np.ndarray, parcels: np.ndarray, transform: Affine, path: Path) -> Path:
    """`POINTS` points at random labelled pixels (centres), with their class and parcel, as a GeoPackage."""
    rng = np.random.default_rng(7)
    rows, cols = np.nonzero(codes > 0)
    take = rng.choice(rows.size, size=POINTS, replace=False)
    r, c = rows[take], cols[take]
    xs, ys = transform * (c + 0.5, r + 0.5)
    gdf = gpd.GeoDataFrame(
        {"class_code": codes[r, c], "parcel": parcels[r, c]},
        geometry=[Point(x, y) for x, y in zip(xs, ys, strict=True)],
        crs=CRS,
    )
    gdf.to_file(path, engine="pyogrio")
    return path


def test_parcel_grouped_accuracy_is_that_of_the_map_on_unseen_parcels(
    lake: LocalStore, reference: tuple[np.ndarray, np.ndarray, Affine], tmp_path: Path
) -> None:
    codes, parcels, transform = reference
    training = training_points(codes, parcels, transform, tmp_path / "points.gpkg")
    processor = Classification()
    params = processor.parse_params(
        {"year": YEAR, "sensor": "sentinel2", "training": str(training), "group_column": "parcel", "seed": 3}
    )
    processor.run(params, Context(store=lake, catalog=StaticCatalog(lake)))

    report = json.loads(lake.path(report_key(YEAR, {})).read_text())
    assert report["validation"]["split"] == "groups"
    assert report["validation"]["group_column"] == "parcel"

    # the parcels it held out, found again as it finds them
    gdf = read_training(training, group_column="parcel")
    y, geometry, rowcol = sample_pixels(gdf, shape=codes.shape, crs=CRS, transform=transform, seed=3)
    groups, _ = validation_groups(geometry, rowcol, block_px=1, labels=gdf["group"].to_numpy())
    held = split_holdout(groups, y, fraction=params.holdout, seed=3)
    held_parcels = np.unique(parcels[rowcol[held, 0], rowcol[held, 1]])
    assert held.sum() == report["n_test"]
    assert not set(held_parcels) & set(parcels[rowcol[~held, 0], rowcol[~held, 1]])  # no parcel on both sides

    _, map_key = map_keys(YEAR, {})
    with rasterio.open(lake.path(map_key)) as src:
        mapped = src.read(1)
    unseen = np.isin(parcels, held_parcels)
    truth = float((mapped[unseen] == codes[unseen]).mean())
    reported = report["overall_accuracy"]
    print(
        f"\nWorldCereal patch: {len(held_parcels)} held-out parcels ({int(unseen.sum())} px): map accuracy "
        f"{truth:.3f}; reported (parcel-grouped, {report['n_test']} points) {reported:.3f}"
    )
    assert abs(reported - truth) <= 0.05

    # the map's accuracy report and item carry the area-weighted estimate, labelled as such
    assessed = json.loads(lake.path(accuracy_keys(YEAR, {})[0]).read_text())
    assert assessed["validation"]["summary"] == "held-out groups of column 'parcel'"
    lo, hi = assessed["overall_accuracy"]["ci95"]
    assert lo <= assessed["overall_accuracy"]["estimate"] <= hi
