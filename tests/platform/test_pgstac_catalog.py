"""The pgstac catalogue back end: the chain on S3 + pgstac gives the embedded default's products, and every
product item is in pgstac exactly once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import psycopg
import pytest
import rasterio
from rasterio.io import MemoryFile
from rich.console import Console

from hrlc.catalog import open_catalog
from hrlc.catalog.items import COLLECTIONS
from hrlc.catalog.pgstac import PgstacCatalog, collection_ids
from hrlc.catalog.static import StaticCatalog
from hrlc.jobs.runner import InProcessRunner
from hrlc.lake import layout
from hrlc.lake.store import LocalStore
from hrlc.settings import Settings
from landcover import dag_item_id, dag_key

YEAR = 2021  # the platform run's year (conftest.PLATFORM_YEAR)


def _counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select collection, count(*) from pgstac.items group by collection").fetchall()
    return {c: int(n) for c, n in rows if c in set(COLLECTIONS.values())}


def test_same_class_map_as_the_embedded_default(static_run: Any, platform_run: Any) -> None:
    key = dag_key(platform_run.dag, "class-map")
    with rasterio.open(static_run.store.gdal_path(key)) as src:
        expected, profile = src.read(1), src.profile
    with MemoryFile(platform_run.store.read_bytes(key)) as mem, mem.open() as src:
        got = src.read(1)
        assert src.crs == profile["crs"] and src.transform == profile["transform"]
    assert (expected > 0).mean() > 0.99
    np.testing.assert_array_equal(got, expected)
    # the item JSON stays in the lake, and processors read it back by its lake href
    assert all(h.startswith("s3://hrlc-platform-lake/lake/metadata/stac/") for h in platform_run.result.items)
    assert len(platform_run.result.items) == len(static_run.result.items)


def test_every_product_is_in_pgstac_once(static_run: Any, platform_run: Any, pgstac_dsn: str) -> None:
    expected = Counter(str(i.collection_id) for i in static_run.catalog.items())
    assert sum(expected.values()) == len(static_run.result.items) == 31
    assert _counts(pgstac_dsn) == expected

    # adding the same items again, and rerunning a task, duplicates nothing
    catalog = platform_run.catalog
    assert isinstance(catalog, PgstacCatalog)
    assert catalog.load(catalog.items()) == 31
    map_item = layout.key(
        "stac-item", collection="hrlc-class-maps", item_id=dag_item_id(platform_run.dag, "class-map")
    )
    platform_run.store.delete(map_item)  # the mosaic task is no longer complete: it runs again
    with PgstacCatalog(platform_run.store, pgstac_dsn) as again:
        rerun = InProcessRunner(platform_run.store, again, console=Console(quiet=True)).run(platform_run.dag)
        assert [t.skipped for t in rerun.tasks] == [True, True, True, True, False]
        assert again.count() == 31
    assert _counts(pgstac_dsn) == expected


def test_collections_have_extents_summaries_and_item_assets(platform_run: Any, pgstac_dsn: str) -> None:
    with psycopg.connect(pgstac_dsn) as conn:
        docs = {r[0]: r[1] for r in conn.execute("select id, content from pgstac.collections").fetchall()}
        queryables = {r[0] for r in conn.execute("select name from pgstac.queryables").fetchall()}
    assert set(collection_ids()) <= set(docs)
    maps = docs["hrlc-class-maps"]
    assert maps["summaries"]["hrlc:product"] == ["accuracy-report", "class-map"]
    assert maps["item_assets"]["data"]["roles"] == ["data"]
    bbox = maps["extent"]["spatial"]["bbox"][0]
    item = platform_run.catalog.get("hrlc-class-maps", dag_item_id(platform_run.dag, "class-map"))
    assert item is not None and item.bbox is not None
    assert bbox == pytest.approx(item.bbox, abs=1e-6)
    assert maps["extent"]["temporal"]["interval"][0][0].startswith(f"{YEAR}-01-01")
    assert docs["hrlc-change-maps"]["extent"]["temporal"]["interval"] == [[None, None]]
    assert docs["hrlc-feature-stacks"]["item_assets"]["data"]["type"] == "application/netcdf"
    assert {"hrlc:product", "hrlc:year", "hrlc:period"} <= queryables


def test_open_catalog_chooses_the_back_end(tmp_path, pgstac_dsn: str) -> None:
    store = LocalStore(tmp_path / "lake")
    assert type(open_catalog(store, Settings(catalog="static"))) is StaticCatalog
    pg = open_catalog(store, Settings(catalog=pgstac_dsn))
    assert isinstance(pg, PgstacCatalog) and pg.dsn == pgstac_dsn
    with pytest.raises(ValueError, match="HRLC_CATALOG"):
        open_catalog(store, Settings(catalog="mysql://nope"))


def _item(item_id: str) -> Any:
    import datetime as dt

    import pystac

    box = [14.0, 46.0, 14.1, 46.1]
    geometry = {
        "type": "Polygon",
        "coordinates": [[[14.0, 46.0], [14.1, 46.0], [14.1, 46.1], [14.0, 46.1], [14.0, 46.0]]],
    }
    item = pystac.Item(item_id, geometry, box, dt.datetime(2021, 6, 1, tzinfo=dt.UTC), {})
    item.collection_id = "hrlc-class-maps"
    return item


def test_a_dropped_connection_costs_one_reconnect_not_a_failed_task(tmp_path, pgstac_db_factory: Any) -> None:
    """A PostgreSQL restart drops the worker catalogue's idle connection: the next write reconnects at once (it
    used to wait 30 s per retry for a pool of one whose broken connection pypgstac never gave back)."""
    import time

    dsn = pgstac_db_factory("reconnect")
    with PgstacCatalog(LocalStore(tmp_path / "lake"), dsn) as catalog:
        catalog.load([_item("before-restart")])
        for call in range(3):  # the drop hits a write, a search and a count
            with psycopg.connect(dsn, autocommit=True) as conn:
                (n,) = conn.execute(
                    "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                    "where datname = current_database() and pid <> pg_backend_pid()"
                ).fetchone()
            assert n >= 1
            t0 = time.monotonic()
            if call == 0:
                catalog.load([_item("after-restart")])
            elif call == 1:
                assert [i.id for i in catalog.search("hrlc-class-maps")] == [
                    "after-restart",
                    "before-restart",
                ]
            else:
                assert catalog.count("hrlc-class-maps") == 2
            assert time.monotonic() - t0 < 5
