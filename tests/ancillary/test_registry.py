"""The registry of spec §3.4.1.1: every listed dataset with its roles, licence and access, in the database
(schema `ancillary`, created by the versioned migrations), and `hrlc ancillary list`."""

from __future__ import annotations

import json

import psycopg
import pytest
from typer.testing import CliRunner

from hrlc import legend
from hrlc.ancillary import DATASETS, dataset
from hrlc.ancillary.registry import UnknownDataset
from hrlc.catalog.items import COLLECTIONS
from hrlc.cli import app
from hrlc.lake import layout
from hrlc.settings import Settings

runner = CliRunner()

# the spec's list (§3.4.1.1), in its order: name -> (kind, roles, possible roles)
SPEC = {
    "copernicus-dem": ("raster", {"training", "inference"}, set()),
    "esa-worldcover": ("raster", {"comparison", "post-processing"}, {"training"}),
    "glc-fcs30d": ("raster", {"comparison"}, set()),
    "mapbiomas-amazonia": ("raster", {"comparison", "post-processing"}, {"training"}),
    "cci-circumarctic": ("raster", {"comparison", "post-processing"}, {"training"}),
    "globpermafrost": ("raster", {"comparison", "post-processing"}, {"training"}),
    "cci-land-cover": ("raster", {"comparison"}, {"training"}),
    "clms-dynamic-land-cover": ("raster", {"comparison"}, {"training"}),
    "global-surface-water": ("raster", {"post-processing"}, set()),
    "global-human-settlement": ("raster", {"comparison", "post-processing"}, set()),
    "land-cover-agreement": ("raster", {"training", "comparison"}, set()),
    "glance": ("vector", {"training"}, set()),
}


def test_registry_is_the_spec_list() -> None:
    assert list(DATASETS) == list(SPEC)
    for name, (kind, roles, possible) in SPEC.items():
        ds = DATASETS[name]
        assert (ds.kind, set(ds.roles), set(ds.possible_roles)) == (kind, roles, possible), name
        assert ds.licence and ds.title
        assert ds.access in ("stac", "s3", "manual")
        for code in ds.crosswalk.values():
            assert code in legend.CLASSES, (name, code)
    stac = {n: (d.stac.collection, d.stac.asset) for n, d in DATASETS.items() if d.stac}
    assert stac == {
        "copernicus-dem": ("cop-dem-glo-30", "data"),
        "esa-worldcover": ("esa-worldcover", "map"),
        "cci-land-cover": ("esa-cci-lc", "lccs_class"),
        "global-surface-water": ("jrc-gsw", "occurrence"),
    }
    assert DATASETS["copernicus-dem"].resampling_for(30) == "bilinear"
    assert DATASETS["esa-worldcover"].resampling_for(10) == "nearest"
    assert DATASETS["esa-worldcover"].resampling_for(30) == "mode"
    with pytest.raises(UnknownDataset, match="known: copernicus-dem"):
        dataset("srtm")


def test_lake_keys_and_collection() -> None:
    k = layout.key(
        "ancillary-layer", dataset="esa-worldcover", edition=2021, grid="epsg32726-30m-0123456789", fmt="tif"
    )
    assert k == "ancillary/esa-worldcover/2021/esa-worldcover_2021_epsg32726-30m-0123456789.tif"
    assert layout.parse(k).family == "ancillary-layer"
    s = layout.key("ancillary-source", dataset="glance", checksum="0123456789abcdef", name="points.gpkg")
    assert layout.parse(s).fields == {
        "dataset": "glance",
        "checksum": "0123456789abcdef",
        "name": "points.gpkg",
    }
    assert {"ancillary-layer", "ancillary-source"} <= layout.EXTENSIONS
    assert COLLECTIONS["ancillary-layer"] == COLLECTIONS["ancillary-source"] == "hrlc-ancillary"
    with pytest.raises(layout.LayoutError):
        layout.key("ancillary-layer", dataset="Bad_Name", edition="static", grid="g", fmt="tif")


def test_database_holds_the_registry(env: Settings) -> None:
    result = runner.invoke(app, ["ancillary", "migrate"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"applied": []}  # already applied by the fixture
    result = runner.invoke(app, ["ancillary", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [r["name"] for r in listed] == list(SPEC)
    dem = listed[0]
    assert dem["access"] == "stac" and dem["stac_api"] == env.ancillary_stac_api
    assert dem["editions"] == ["static"] and dem["uploads"] == 0
    with psycopg.connect(env.training_dsn) as conn:
        rows = conn.execute(
            "select name, kind, access, roles, licence, definition->>'title' from ancillary.datasets order by name"
        ).fetchall()
        ledger = conn.execute(
            "select version, name from public.hrlc_migrations where component = 'ancillary'"
        ).fetchall()
    assert {r[0] for r in rows} == set(SPEC)
    for name, kind, access, roles, licence, title in rows:
        ds = DATASETS[name]
        assert (kind, access, roles, licence, title) == (
            ds.kind,
            ds.access,
            list(ds.roles),
            ds.licence,
            ds.title,
        )
    assert ledger == [(1, "0001_create_ancillary.sql")]
    table = runner.invoke(app, ["ancillary", "list"])
    assert table.exit_code == 0 and "global-human-settlement" in table.stdout
