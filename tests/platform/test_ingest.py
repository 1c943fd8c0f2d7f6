"""The ingest watcher against the real PostgreSQL/PostGIS + pgstac and the moto S3 server.

Each test module works in a pgstac database of its own (`pgstac_db_factory` of tests/conftest.py), so the item
counts the catalogue tests assert on the shared database are not disturbed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from rasterio.transform import from_origin

from hrlc.catalog import items as product_items
from hrlc.catalog.ingest import Catalogue, list_objects, watch
from hrlc.catalog.static import StaticCatalog
from hrlc.lake import layout
from hrlc.lake.store import LocalStore, S3Store, Store
from hrlc.periods import periods_of
from hrlc.products.cog import write_cog
from hrlc.settings import Settings

REPO = Path(__file__).resolve().parents[2]
TRANSFORM = from_origin(500000.0, 4650000.0, 10.0, 10.0)


@pytest.fixture(scope="module")
def dsn(pgstac_db_factory: Callable[[str], str]) -> str:
    """A pgstac database of this module's own (dropped at the end of the session)."""
    return pgstac_db_factory("ingest")


def _cog(store: Store, key: str, value: int = 1000) -> None:
    data = np.full((2, 32, 32), value, dtype=np.uint16)
    data[:, :4, :4] = 0
    write_cog(store, key, data, crs=32631, transform=TRANSFORM, band_names=["red", "nir"])


def make_products(store: Store, year: int) -> list[str]:
    """A year of products of several families (COGs, JSON), plus objects the watcher must skip."""
    keys = []
    for period in ("01", "02", "03"):
        k = layout.key("optical-composite", sensor="sentinel2", year=year, period=period)
        _cog(store, k, 1000 + int(period))
        keys.append(k)
    k = layout.key("class-map", kind="optical", year=year, period="annual")
    write_cog(
        store, k, np.full((32, 32), 3, dtype=np.uint8), crs=32631, transform=TRANSFORM, categorical=True
    )
    keys.append(k)
    k = layout.key("accuracy-report", kind="optical", year=year, period="annual")
    store.write_bytes(k, json.dumps({"overall_accuracy": 0.9}).encode())
    keys.append(k)
    return keys


def rows(dsn: str, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        conn.execute("set search_path to pgstac, public")
        return conn.execute(sql, args).fetchall()


def get_item(dsn: str, item_id: str, collection: str) -> dict[str, Any]:
    (d,) = rows(dsn, "select get_item(%s, %s)", [item_id, collection])[0]
    assert d is not None, f"no item {collection}/{item_id}"
    return dict(d)


def items_of_year(dsn: str, year: int) -> dict[str, tuple[str, str]]:
    """id -> (collection, xmin) of the items of one year (xmin changes whenever a row is rewritten)."""
    r = rows(
        dsn,
        "select id, collection, xmin::text from items where content->'properties'->>'hrlc:year' = %s",
        [str(year)],
    )
    return {i: (c, x) for i, c, x in r}


def state(dsn: str, store: Store) -> dict[str, tuple[str, str | None, str | None]]:
    r = rows(
        dsn,
        "select key, status, item_id, error from hrlc.ingest_state where store = %s",
        [store.url],
    )
    return {k: (s, i, e) for k, s, i, e in r}


def test_watcher_loads_products_and_rerun_changes_nothing(tmp_path: Path, dsn: str) -> None:
    store = LocalStore(tmp_path / "lake")
    keys = make_products(store, 2011)
    corrupt = layout.key("optical-composite", sensor="sentinel2", year=2011, period="04")
    good = store.read_bytes(keys[0])
    store.write_bytes(corrupt, good[: len(good) // 3])  # a truncated COG
    store.write_bytes("logs/run-1.log", b"hello")
    store.write_bytes("notes/readme.txt", b"not in the layout")

    rep = watch(store, dsn, once=True, batch=2)
    assert (rep.loaded, rep.errors, rep.skipped) == (len(keys), 1, 2)
    assert rep.error_keys == [corrupt]

    items = items_of_year(dsn, 2011)
    assert set(items) == {product_items.item_id(k) for k in keys}
    assert items["optical_sentinel2_2011_02"][0] == "hrlc-optical-composites"
    assert items["classified_map_optical_2011_annual"][0] == "hrlc-class-maps"
    assert items["accuracy_optical_2011_annual"][0] == "hrlc-class-maps"
    content = get_item(dsn, "optical_sentinel2_2011_02", "hrlc-optical-composites")
    props = content["properties"]
    assert props["hrlc:product"] == "optical-composite"
    assert props["hrlc:year"] == 2011 and props["hrlc:period"] == "02"
    assert props["hrlc:sensor"] == "sentinel2"
    assert props["start_datetime"].startswith("2011-02-01") and props["end_datetime"].startswith("2011-02-28")
    assert props.get("proj:code") == "EPSG:32631" or props.get("proj:epsg") == 32631
    assert content["assets"]["data"]["href"] == store.href(keys[1])
    assert [b["data_type"] for b in content["assets"]["data"]["raster:bands"]] == ["uint16", "uint16"]
    # the JSON product has no raster: it takes the extent of the year's catalogued products
    (acc,) = rows(
        dsn,
        "select st_astext(st_envelope(geometry)) from items where id = %s",
        ["accuracy_optical_2011_annual"],
    )[0]
    assert acc.startswith("POLYGON((2.9")  # lon of UTM 31N easting 500 km

    st = state(dsn, store)
    assert st[corrupt][0] == "error" and st[corrupt][2]
    assert st["logs/run-1.log"][0] == "skipped" and st["notes/readme.txt"][0] == "skipped"
    assert corrupt.split("/")[-1].removesuffix(".tif") not in items

    # rerun: nothing pending, no row rewritten, checkpoint untouched
    before = rows(dsn, "select key, etag, ingested_at from hrlc.ingest_state where store = %s", [store.url])
    again = watch(store, dsn, once=True)
    assert (again.listed, again.pending, again.loaded) == (len(keys) + 3, 0, 0)
    assert items_of_year(dsn, 2011) == items
    after = rows(dsn, "select key, etag, ingested_at from hrlc.ingest_state where store = %s", [store.url])
    assert sorted(after) == sorted(before)

    # a changed product is reloaded (and only it); the corrupt one, once fixed, is loaded
    _cog(store, keys[0], 2222)
    store.write_bytes(corrupt, good)
    third = watch(store, dsn, once=True)
    assert (third.pending, third.loaded, third.errors) == (2, 2, 0)
    now = items_of_year(dsn, 2011)
    changed = {i for i in now if now[i] != items.get(i)}
    assert changed == {"optical_sentinel2_2011_01", "optical_sentinel2_2011_04"}
    assert state(dsn, store)[corrupt][0] == "loaded"


def test_chain_item_in_lake_is_preferred(tmp_path: Path, dsn: str) -> None:
    """A product the chain catalogued (item JSON with lineage in the lake) keeps its lineage in pgstac."""
    store = LocalStore(tmp_path / "lake")
    k = layout.key("optical-composite", sensor="landsat", year=2012, period="season2")
    _cog(store, k)
    start, end = product_items.period_range(2012, "season2")
    item = product_items.raster_item(
        store,
        k,
        start=start,
        end=end,
        processor="optical-preprocessing",
        processor_version="9.9",
        inputs=["LC08_X", "LC09_Y"],
    )
    StaticCatalog(store).add(item)
    rep = watch(store, dsn, once=True)
    assert rep.errors == 0 and rep.loaded == 2  # the product file and its item JSON: one item
    content = get_item(dsn, item.id, "hrlc-optical-composites")
    assert content["properties"]["hrlc:processor"] == "optical-preprocessing"
    assert content["properties"]["hrlc:inputs"] == ["LC08_X", "LC09_Y"]
    assert content["properties"]["hrlc:period"] == "season2"
    assert state(dsn, store)["metadata/stac/hrlc-optical-composites/collection.json"][0] == "skipped"


def test_watcher_on_s3(s3_server: Any, dsn: str) -> None:
    bucket = s3_server.new_bucket("hrlc-ingest-lake")
    gdal = {"AWS_S3_ENDPOINT": s3_server.host_port, "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE"}
    old = {k: os.environ.get(k) for k in gdal}
    os.environ.update(gdal)
    try:
        store = S3Store(f"s3://{bucket}/lake", Settings())
        keys = make_products(store, 2013)
        listed = {o.key: o for o in list_objects(store)}
        assert set(listed) == set(keys) and all(o.etag for o in listed.values())

        rep = watch(store, dsn, once=True)
        assert (rep.loaded, rep.errors) == (len(keys), 0)
        items = items_of_year(dsn, 2013)
        assert set(items) == {product_items.item_id(k) for k in keys}
        (href,) = rows(
            dsn,
            "select content->'assets'->'data'->>'href' from items where id = %s",
            ["optical_sentinel2_2013_01"],
        )[0]
        assert href == f"s3://{bucket}/lake/{keys[0]}"
        assert watch(store, dsn, once=True).pending == 0
        assert items_of_year(dsn, 2013) == items
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_kill_mid_batch_loses_nothing_duplicates_nothing(tmp_path: Path, dsn: str) -> None:
    """kill -9 the watcher process while it loads, restart it: lake objects == items, no duplicates."""
    store = LocalStore(tmp_path / "lake")
    _cog(store, "seed.tif")
    cog = store.read_bytes("seed.tif")
    store.delete("seed.tif")
    expected = set()
    for year in range(2101, 2116):  # 15 years x 16 products = 240 objects
        for sensor in ("sentinel2", "landsat"):
            for period in periods_of(sensor)[:8]:
                for family in ("optical-composite", "optical-cloudmask"):
                    k = layout.key(family, sensor=sensor, year=year, period=period)
                    store.write_bytes(k, cog)
                    expected.add(product_items.item_id(k))
    n_objects = len(list(store.list()))
    cmd = [
        sys.executable,
        "-m",
        "hrlc.catalog.ingest_cli",
        "--store",
        store.url,
        "--dsn",
        dsn,
        "--batch",
        "10",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def loaded() -> int:
        r = rows(dsn, "select count(*) from hrlc.ingest_state where store = %s", [store.url])
        return int(r[0][0])

    kills = 0
    for threshold in (30, 120):  # two crashes at different points of the scan
        proc = subprocess.Popen(
            [*cmd, "--once"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while loaded() < threshold and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=10)
        # after a crash, the catalogue and the checkpoint agree: every checkpointed object has its item
        ids = {r[0] for r in rows(dsn, "select id from items where id like 'optical_%%_21%%'")}
        ck = {r[0] for r in rows(dsn, "select item_id from hrlc.ingest_state where store = %s", [store.url])}
        assert ids == ck
        assert 0 < len(ck) < len(expected)
    assert kills == 2

    done = subprocess.run([*cmd, "--once"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ids = rows(dsn, "select id, collection from items where id like 'optical_%%_21%%'")
    assert len(ids) == len({i for i, _ in ids})  # no duplicated item
    assert {i for i, _ in ids} == expected  # no object lost
    assert loaded() == n_objects
    assert all(s == "loaded" for s, _, _ in state(dsn, store).values())


def test_catalogue_checkpoint_table_is_idempotent(dsn: str) -> None:
    with Catalogue(dsn) as a, Catalogue(dsn) as b:
        assert a.state("file:///nowhere") == b.state("file:///nowhere") == {}


def test_polling_watcher_rides_out_a_database_restart(tmp_path: Path, dsn: str) -> None:
    """The database drops every connection (what a PostgreSQL restart does to its clients): a polling watcher
    logs one line, reconnects with back-off and goes on ingesting; it neither exits nor floods its log."""
    store = LocalStore(tmp_path / "lake")
    first = layout.key("optical-composite", sensor="sentinel2", year=2201, period="01")
    _cog(store, first)
    cmd = [
        sys.executable,
        "-m",
        "hrlc.catalog.ingest_cli",
        "--store",
        store.url,
        "--dsn",
        dsn,
        "--interval",
        "0.3",
    ]
    log = tmp_path / "watcher.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=out
        )
    try:

        def wait_loaded(key: str) -> None:
            deadline = time.monotonic() + 60
            while state(dsn, store).get(key, ("",))[0] != "loaded":
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)

        wait_loaded(first)
        for _ in range(2):  # twice: the second outage is announced again, once
            with psycopg.connect(dsn, autocommit=True) as conn:
                (n,) = conn.execute(
                    "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                    "where datname = current_database() and pid <> pg_backend_pid() and application_name = %s",
                    ["hrlc-ingest"],
                ).fetchone()
            assert n >= 1
            time.sleep(1.0)
        second = layout.key("optical-composite", sensor="sentinel2", year=2201, period="02")
        _cog(store, second)
        wait_loaded(second)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    text = log.read_text()
    assert text.count("catalogue database or lake unavailable") == 2, text
    assert text.count("catalogue database or lake back after") == 2, text
    assert "Traceback" not in text, text
    assert get_item(dsn, product_items.item_id(second), "hrlc-optical-composites")["id"]
