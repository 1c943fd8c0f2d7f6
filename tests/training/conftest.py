"""Fixtures of the training-set database tests: a fresh PostGIS database, real training sets laid out under the
naming convention (eo-learn Slovenian land-use polygons, WorldCereal points), and a snapshot of the data
tables to prove that a rejected import leaves the database exactly as before."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import psycopg
import pytest
import shapely

from hrlc import legend
from hrlc.training import db

LULC = Path("data/eo-learn/example_data/TestEOPatch/vector_timeless/LULC.gpkg")
WORLDCEREAL = Path(
    "data/worldcereal-classification/tests/worldcerealtests/testresources/test_public_extractions.parquet"
)
LULC_SET = "slovenia_static_T33TVM_2017_photo-interpreted_eolearn"
WORLDCEREAL_SET = "africa_historic_UGA-SSD_2017_photo-interpreted_WorldCereal"

#: the tables that hold training data (the import log, import_run/import_outcome, grows with every import)
DATA_TABLES = (
    "hrlc_class",
    "provider",
    "label_mapping",
    "trainingmetadata",
    "trainingprovider",
    "trainingset",
)


def ewoc_to_hrlc(code: int) -> int | None:
    """WorldCereal's hierarchical EWOC legend -> HRLC: 11xx temporary crops -> 80 croplands, 20xx herbaceous
    vegetation and grasslands -> 70, 43xx trees -> 30, 60xx built-up -> 130 (what the sample file holds)."""
    text = str(code)
    for prefix, hrlc in (("11", 80), ("20", 70), ("43", 30), ("60", 130)):
        if text.startswith(prefix):
            return hrlc
    return None


def new_training_db(factory: Callable[[str], str], suffix: str) -> str:
    """A fresh PostGIS database with the training schema and the provider `eolearn` (eo-learn LULC_ID labels,
    0 = no data)."""
    dsn = factory(suffix)
    db.migrate(dsn)
    lulc = {k: (v or None) for k, v in legend.EOLEARN_LULC_TO_HRLC.items()}
    db.add_provider(
        "eolearn",
        "eo-learn TestEOPatch (Slovenian MKGP land use)",
        dsn=dsn,
        class_column="LULC_ID",
        mapping=lulc,
    )
    return dsn


@pytest.fixture(scope="session")
def training_dsn(pgstac_db_factory: Callable[[str], str]) -> str:
    """The training database shared by the tests of the import rules (each uses its own set names)."""
    return new_training_db(pgstac_db_factory, "training")


@pytest.fixture(scope="session")
def worldcereal_points(shared: Path) -> gpd.GeoDataFrame:
    """The 500 WorldCereal samples as points (lon/lat) with their EWOC code and label."""
    df = pd.read_parquet(
        shared / WORLDCEREAL,
        columns=["sample_id", "lon", "lat", "ewoc_code", "label_full", "ref_id", "valid_time"],
    )
    return gpd.GeoDataFrame(
        {
            "sample_id": df["sample_id"].astype(str),
            "ewoc_code": df["ewoc_code"].astype("int64"),
            "label_full": df["label_full"].astype(str),
            "ref_id": df["ref_id"].astype(str),
            "valid_time": df["valid_time"].astype(str),
        },
        geometry=shapely.points(df["lon"].to_numpy(), df["lat"].to_numpy()),
        crs="EPSG:4326",
    )


def add_worldcereal_provider(dsn: str, points: gpd.GeoDataFrame) -> None:
    mapping = {int(c): ewoc_to_hrlc(int(c)) for c in points["ewoc_code"].unique()}
    db.add_provider(
        "WorldCereal", "ESA WorldCereal reference data", dsn=dsn, class_column="ewoc_code", mapping=mapping
    )


@pytest.fixture(scope="session")
def lulc_polygons(shared: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(shared / LULC, engine="pyogrio")


def write_set(
    root: Path,
    name: str,
    gdf: gpd.GeoDataFrame,
    *,
    shapefile: bool = True,
    geojson: bool = False,
    qml: bool = False,
    **options: Any,
) -> Path:
    """Write `gdf` as the training set `name` under `root/<area_name>/<name>/`; returns the set's folder."""
    area = name.split("_")[0]
    folder = root / area / name
    folder.mkdir(parents=True, exist_ok=True)
    if shapefile:
        gdf.to_file(folder / f"{name}.shp", engine="pyogrio", **options)
    if geojson:
        gdf.to_file(folder / f"{name}.geojson", driver="GeoJSON", engine="pyogrio")
    if qml:
        (folder / f"{name}.qml").write_text("<qgis><renderer-v2 type='categorizedSymbol'/></qgis>\n")
    return folder


def snapshot(dsn: str) -> dict[str, tuple[int, str]]:
    """(row count, md5 of all rows) of every data table of the training schema."""
    out = {}
    with psycopg.connect(dsn) as conn:
        for table in DATA_TABLES:
            row = conn.execute(
                f"select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) "
                f"from training.{table} t"
            ).fetchone()
            assert row is not None
            out[table] = (int(row[0]), str(row[1]))
    return out


def query(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()
