"""Real data: the eo-learn TestEOPatch (Sentinel-2 L1C over Slovenia, 68 dates 2015-2017, 101x100 px at 10 m).

Its arrays are wrapped as COGs + STAC Items (a static catalogue, as an external repository would be), loaded
back with odc-stac, composited monthly with hrlc's compositing code under its cloud mask CLM, gap-filled,
and its LULC reference (mapped to the HRLC legend) is classified with spatially blocked cross-validation.
The overall accuracy reached is printed and recorded in docs/performance.md.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.stac import load
from pyproj import Transformer
from rasterio.transform import from_bounds
from shapely.geometry import box, mapping

from hrlc import legend
from hrlc.chain import classification, features, optical

PATCH = Path("data/eo-learn/example_data/TestEOPatch")
YEARS = (2016, 2017)
BLOCK_PX = 20  # 200 m spatial blocks for cross-validation


@pytest.fixture(scope="module")
def patch(shared: Path) -> dict[str, object]:
    d = shared / PATCH
    bbox = json.loads((d / "bbox.geojson").read_text())["coordinates"][0]
    xs, ys = [p[0] for p in bbox], [p[1] for p in bbox]
    return {
        "ndvi": np.load(d / "data/NDVI.npy")[..., 0],
        "clm": np.load(d / "mask/CLM.npy")[..., 0],
        "lulc": np.load(d / "mask_timeless/LULC.npy")[..., 0],
        "times": [dt.datetime.fromisoformat(t) for t in json.loads((d / "timestamps.json").read_text())],
        "bounds": (min(xs), min(ys), max(xs), max(ys)),
        "epsg": 32633,
    }


@pytest.fixture(scope="module")
def catalog(patch: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[type-arg]
    """The patch as an external repository: one item per date with an NDVI and a CLM COG asset."""
    root = tmp_path_factory.mktemp("eolearn")
    ndvi, clm = patch["ndvi"], patch["clm"]
    t, h, w = ndvi.shape
    transform = from_bounds(*patch["bounds"], w, h)
    cat = pystac.Catalog("eolearn-testpatch", "eo-learn TestEOPatch as COGs")
    coll = pystac.Collection(
        "eolearn-s2-l1c",
        "eo-learn TestEOPatch NDVI + CLM",
        pystac.Extent(
            pystac.SpatialExtent([[0, 0, 1, 1]]),
            pystac.TemporalExtent([[patch["times"][0], patch["times"][-1]]]),
        ),
    )
    cat.add_child(coll)
    for i, when in enumerate(patch["times"]):
        item_id = f"eolearn_{when:%Y%m%dT%H%M%S}_{i:02d}"
        (root / item_id).mkdir()
        assets = {}
        for name, arr, dtype, nodata in (("ndvi", ndvi[i], "float32", None), ("clm", clm[i], "uint8", None)):
            path = root / item_id / f"{name}.tif"
            with rasterio.open(
                path,
                "w",
                driver="COG",
                width=w,
                height=h,
                count=1,
                dtype=dtype,
                crs=f"EPSG:{patch['epsg']}",
                transform=transform,
                nodata=nodata,
            ) as dst:
                dst.write(arr.astype(dtype), 1)
            assets[name] = pystac.Asset(str(path), media_type=pystac.MediaType.COG, roles=["data"])
        item = pystac.Item(item_id, None, None, when.replace(tzinfo=dt.UTC), {}, collection=coll.id)
        item.ext.add("proj")
        item.ext.proj.code = f"EPSG:{patch['epsg']}"
        item.ext.proj.bbox = list(patch["bounds"])
        item.ext.proj.shape = [h, w]
        item.ext.proj.transform = list(transform)[:6]
        tr = Transformer.from_crs(patch["epsg"], 4326, always_xy=True)
        lon0, lat0 = tr.transform(patch["bounds"][0], patch["bounds"][1])
        lon1, lat1 = tr.transform(patch["bounds"][2], patch["bounds"][3])
        item.geometry, item.bbox = mapping(box(lon0, lat0, lon1, lat1)), [lon0, lat0, lon1, lat1]
        for k, a in assets.items():
            item.add_asset(k, a)
        coll.add_item(item)
    coll.update_extent_from_items()
    cat.normalize_and_save(str(root / "stac"), pystac.CatalogType.ABSOLUTE_PUBLISHED)
    return root / "stac" / "catalog.json"


def monthly_ndvi(catalog: Path, patch: dict) -> xr.Dataset:  # type: ignore[type-arg]
    items = list(pystac.Catalog.from_file(str(catalog)).get_items(recursive=True))
    h, w = patch["lulc"].shape
    grid = GeoBox((h, w), from_bounds(*patch["bounds"], w, h), f"EPSG:{patch['epsg']}")
    cube = load(items, bands=["ndvi", "clm"], like=grid, chunks={"x": 128, "y": 128}, groupby="id")
    assert hasattr(cube.ndvi.data, "dask")  # lazily loaded
    cube = cube.sortby("time").compute()
    out = []
    for year in YEARS:
        comp = optical.composite(
            cube[["ndvi"]], cube.clm == 1, year=year, period="month", method="median", nodata=np.nan
        )
        filled = features.gap_fill(comp[["ndvi"]])
        out.append(filled.assign_coords(period=[f"{year}_{p}" for p in filled.period.values]))
    return xr.concat(out, dim="period")


def test_monthly_ndvi_composites_respect_the_cloud_mask(catalog: Path, patch: dict) -> None:  # type: ignore[type-arg]
    items = list(pystac.Catalog.from_file(str(catalog)).get_items(recursive=True))
    assert len(items) == 68
    ndvi, clm = patch["ndvi"], patch["clm"]
    times = np.array(patch["times"], dtype="datetime64[s]")
    cube = xr.Dataset({"ndvi": (("time", "y", "x"), ndvi)}, coords={"time": times})
    comp = optical.composite(
        cube, xr.DataArray(clm == 1, dims=("time", "y", "x")), year=2017, period="month", nodata=np.nan
    )
    pidx = optical.period_index(times, 2017, "month")
    for m in range(12):
        sel = pidx == m
        clear = clm[sel] == 0
        vals = np.where(clear, ndvi[sel], np.nan)
        has = clear.any(axis=0)
        got = comp.ndvi.values[m]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            np.testing.assert_allclose(got[has], np.nanmedian(vals, axis=0)[has], rtol=1e-6)
        assert np.isnan(got[~has]).all()


def test_lulc_blocked_cross_validation(catalog: Path, patch: dict) -> None:  # type: ignore[type-arg]
    stack = monthly_ndvi(catalog, patch)
    X_cube = stack.ndvi.values  # (24, y, x)
    lulc = legend.crosswalk(patch["lulc"], legend.EOLEARN_LULC_TO_HRLC)
    h, w = lulc.shape
    rows, cols = np.mgrid[0:h, 0:w]
    keep = (lulc > 0) & np.isfinite(X_cube).all(axis=0)
    stats = [np.nanmin(X_cube, 0), np.nanmax(X_cube, 0), np.nanmedian(X_cube, 0), np.nanstd(X_cube, 0)]
    X = np.concatenate([X_cube, np.stack(stats)])[:, keep].T
    y = lulc[keep]
    groups = classification.spatial_blocks(rows[keep], cols[keep], BLOCK_PX)
    report = classification.blocked_cross_validation(X, y, groups, method="rf", n_splits=5, seed=0)
    majority = np.bincount(y).max() / y.size
    print(
        f"\neo-learn TestEOPatch LULC, monthly NDVI {YEARS}, {BLOCK_PX * 10} m blocks, 5-fold: "
        f"OA {report['overall_accuracy']:.3f} kappa {report['kappa']:.3f} (majority class {majority:.3f}) "
        f"F1 {report['per_class_f1']}"
    )
    assert report["n_samples"] == int(keep.sum()) > 9000
    assert report["overall_accuracy"] > majority + 0.05
    assert report["overall_accuracy"] >= 0.80
