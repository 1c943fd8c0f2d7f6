"""Real training sets through the database: the eo-learn Slovenian land-use polygons (LULC.gpkg, LULC_ID mapped
to HRLC by provider `eolearn`'s label mapping) imported from a folder, the WorldCereal samples (points from
test_public_extractions.parquet, EWOC codes mapped by provider `WorldCereal`) imported from S3 (moto), both
under the naming convention; samples selected back by area/year/type/source/provider/bbox; and a classifier
trained from the database on the eo-learn NDVI time series."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from rasterio.transform import from_bounds

from hrlc.chain import classification, features, optical
from hrlc.settings import Settings
from hrlc.training import db
from hrlc.training.importer import ImportReport, import_training
from hrlc.training.samples import TrainingDataError, extract_samples
from hrlc.training.select import select_samples

from .conftest import (
    LULC_SET,
    WORLDCEREAL_SET,
    add_worldcereal_provider,
    new_training_db,
    query,
    snapshot,
    write_set,
)

PATCH = Path("data/eo-learn/example_data/TestEOPatch")
BUCKET = "hrlc-training-sets"


@pytest.fixture(scope="module")
def training_dsn(pgstac_db_factory: Callable[[str], str], worldcereal_points: gpd.GeoDataFrame) -> str:
    """A database of its own: these tests count every sample of a selection."""
    dsn = new_training_db(pgstac_db_factory, "training_realdata")
    add_worldcereal_provider(dsn, worldcereal_points)
    return dsn


@pytest.fixture(scope="module")
def imported(
    training_dsn: str,
    lulc_polygons: gpd.GeoDataFrame,
    worldcereal_points: gpd.GeoDataFrame,
    s3_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, ImportReport]:
    """LULC imported from a local folder, WorldCereal (shapefile + GeoJSON + QML) from s3://BUCKET/incoming."""
    local = tmp_path_factory.mktemp("training-local")
    write_set(local, LULC_SET, lulc_polygons, qml=True)
    staging = tmp_path_factory.mktemp("training-s3")
    folder = write_set(staging, WORLDCEREAL_SET, worldcereal_points, geojson=True, qml=True)
    client = s3_server.client()
    s3_server.new_bucket(BUCKET)
    for f in sorted(folder.iterdir()):
        client.put_object(
            Bucket=BUCKET, Key=f"incoming/africa/{WORLDCEREAL_SET}/{f.name}", Body=f.read_bytes()
        )
    return {
        "local": import_training(local, dsn=training_dsn),
        "s3": import_training(f"s3://{BUCKET}/incoming", dsn=training_dsn, settings=Settings()),
    }


def test_lulc_polygons_imported_with_their_mapping(
    imported: dict[str, ImportReport], training_dsn: str
) -> None:
    [o] = imported["local"].outcomes
    assert (o.dataset_name, o.outcome, o.version, o.n_features) == (LULC_SET, "imported", 1, 84)
    assert "skipped 4 feature(s) whose label ['0'] maps to no class" in o.notes  # LULC_ID 0 = no data
    rows = query(
        training_dsn,
        "select original_label, class_code, count(*) from training.trainingset s "
        "join training.dataset d using (trainingmetadata_id) where d.dataset_name = %s group by 1, 2 order by 1",
        LULC_SET,
    )
    # cultivated -> croplands, forest -> deciduous broadleaf, grassland, shrubland -> deciduous shrub, built-up
    assert rows == [("1", 80, 4), ("2", 30, 10), ("3", 70, 26), ("4", 60, 33), ("8", 130, 11)]
    [(srid, kind, area, typ, roi, year, source, provider, lon, lat, qml, cls)] = query(
        training_dsn,
        "select d.srid, d.geometry_kind, d.area_name, d.type, d.roi, d.year, d.source, d.provider, "
        "st_x(st_centroid(d.extent)), st_y(st_centroid(d.extent)), m.style_qml is not null, m.class_column "
        "from training.dataset d join training.trainingmetadata m using (trainingmetadata_id) "
        "where d.dataset_name = %s",
        LULC_SET,
    )
    assert (srid, kind, area, typ, roi, year, source, provider) == (
        32633,
        "polygon",
        "slovenia",
        "static",
        "T33TVM",
        2017,
        "photo-interpreted",
        "eolearn",
    )
    assert lon == pytest.approx(14.56, abs=0.02) and lat == pytest.approx(45.87, abs=0.02)
    assert qml and cls == "LULC_ID"


def test_worldcereal_points_imported_from_s3(imported: dict[str, ImportReport], training_dsn: str) -> None:
    [o] = imported["s3"].outcomes
    assert (o.dataset_name, o.outcome, o.n_features) == (WORLDCEREAL_SET, "imported", 500)
    assert o.location == f"s3://{BUCKET}/incoming/africa/{WORLDCEREAL_SET}/"
    [(files, location, srid, kind)] = query(
        training_dsn,
        "select files, location, srid, geometry_kind from training.trainingmetadata where dataset_name = %s",
        WORLDCEREAL_SET,
    )
    assert sorted(f["name"].rsplit(".", 1)[1] for f in files) == [
        "cpg",
        "dbf",
        "geojson",
        "prj",
        "qml",
        "shp",
        "shx",
    ]
    assert all(len(f["sha256"]) == 64 for f in files)
    assert (location, srid, kind) == (o.location, 4326, "point")
    counts = dict(
        query(
            training_dsn,
            "select class_code, count(*) from training.trainingset join training.dataset d "
            "using (trainingmetadata_id) where d.dataset_name = %s group by 1",
            WORLDCEREAL_SET,
        )
    )
    assert counts == {80: 471, 30: 23, 70: 5, 130: 1}
    [(sample_id, label, attrs)] = query(
        training_dsn,
        "select sample_id, original_label, attributes from training.trainingset s join training.dataset d "
        "using (trainingmetadata_id) where d.dataset_name = %s and s.feature_index = 0",
        WORLDCEREAL_SET,
    )
    assert sample_id == "2017_SSD_ESA-project-Sen2Agri_POLY_111_218" and label == "1101070000"
    assert attrs["label_full"] == "unspecified_sorghum"


def test_reimport_from_s3_is_a_no_op(imported: dict[str, ImportReport], training_dsn: str) -> None:
    before = snapshot(training_dsn)
    report = import_training(f"s3://{BUCKET}/incoming", dsn=training_dsn, settings=Settings())
    assert [o.outcome for o in report.outcomes] == ["unchanged"]
    assert snapshot(training_dsn) == before
    status = db.import_status(training_dsn).set_index("dataset_name")
    assert status.loc[WORLDCEREAL_SET, "outcome"] == "unchanged"
    assert status.loc[LULC_SET, "outcome"] == "imported"


def test_select_samples_by_naming_parts_and_bbox(
    imported: dict[str, ImportReport], training_dsn: str
) -> None:
    lulc = select_samples(
        training_dsn,
        area="slovenia",
        year=2017,
        type="static",
        source="photo-interpreted",
        provider="EOLEARN",
    )
    assert len(lulc) == 84 and lulc.crs.to_epsg() == 32633  # one SRID selected: the delivered geometries
    assert list(lulc.columns) == ["class_code", "sample_id", "dataset", "geometry"]
    assert lulc.class_code.dtype == np.int64 and set(lulc.class_code) == {30, 60, 70, 80, 130}
    assert lulc.attrs["datasets"] == [
        {"name": LULC_SET, "version": 1, "checksum": imported["local"].outcomes[0].checksum}
    ]

    both = select_samples(training_dsn, year=2017, source="photo-interpreted")
    assert len(both) == 584 and both.crs.to_epsg() == 4326  # two SRIDs: the lon/lat copies
    uganda = select_samples(training_dsn, provider="WorldCereal", bbox=(33.0, 1.0, 35.0, 4.0))
    assert 0 < len(uganda) < 500
    b = uganda.total_bounds
    assert b[0] >= 33.0 and b[1] >= 1.0 and b[2] <= 35.0 and b[3] <= 4.0
    assert len(select_samples(training_dsn, type="historic", area="africa")) == 500
    with pytest.raises(
        TrainingDataError, match="no training set in the database matches training-db:area=siberia"
    ):
        select_samples(training_dsn, area="siberia")


def ndvi_features(shared: Path) -> tuple[np.ndarray, Any]:
    """Monthly NDVI composites of 2016 and 2017 (cloud mask CLM, gap-filled) + min/max/median/std:
    a (28, 101, 100) cube on the patch's UTM 33N grid, as in tests/realdata."""
    d = shared / PATCH
    ndvi = np.load(d / "data/NDVI.npy")[..., 0]
    clm = np.load(d / "mask/CLM.npy")[..., 0]
    times = np.array(
        [dt.datetime.fromisoformat(t) for t in json.loads((d / "timestamps.json").read_text())],
        dtype="datetime64[s]",
    )
    ring = json.loads((d / "bbox.geojson").read_text())["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    transform = from_bounds(min(xs), min(ys), max(xs), max(ys), ndvi.shape[2], ndvi.shape[1])
    cube = xr.Dataset({"ndvi": (("time", "y", "x"), ndvi)}, coords={"time": times})
    mask = xr.DataArray(clm == 1, dims=("time", "y", "x"))
    monthly = np.concatenate(
        [
            features.gap_fill(
                optical.composite(cube, mask, year=y, period="month", nodata=np.nan)
            ).ndvi.values
            for y in (2016, 2017)
        ]
    )
    stats = [np.nanmin(monthly, 0), np.nanmax(monthly, 0), np.nanmedian(monthly, 0), np.nanstd(monthly, 0)]
    return np.concatenate([monthly, np.stack(stats)]), transform


def test_classifier_trained_from_the_database(
    imported: dict[str, ImportReport], training_dsn: str, shared: Path
) -> None:
    cube, transform = ndvi_features(shared)
    samples = select_samples(training_dsn, area="slovenia", year=2017, provider="eolearn")
    X, y, groups, _ = extract_samples(samples, cube, crs="EPSG:32633", transform=transform)
    report = classification.blocked_cross_validation(X, y, groups, method="rf", n_splits=5, seed=0)
    majority = np.bincount(y).max() / y.size
    print(
        f"\neo-learn LULC polygons from the training DB, monthly NDVI 2016-2017, polygon-grouped 5-fold: "
        f"OA {report['overall_accuracy']:.3f} kappa {report['kappa']:.3f} (majority {majority:.3f}), "
        f"{len(y)} px of {np.unique(groups).size} polygons"
    )
    assert len(y) > 3000 and np.unique(groups).size >= 80
    assert report["overall_accuracy"] >= 0.68
    assert report["overall_accuracy"] > majority + 0.2
