"""Benchmarks of the catalogue: ingest rate vs `pypgstac load`, and search latency at 100 000+ items.

Prints ONE JSON line per measurement:

1. `ingest` — the same ndjson of N synthetic product items (ids and properties from the Data Lake layout:
   `fused_class_map_{year}_{region}`), loaded into a FRESH pgstac database each by
   (a) pypgstac's `Loader.load_items(..., upsert)` (what `pypgstac load items --method upsert` runs; the CLI
       is also timed, its Python start-up included),
   (b) hrlc's ingest commit path (`hrlc.catalog.ingest._commit`: pypgstac loader + checkpoint rows in ONE
       transaction per batch), at batches of 100, 500 and 1 000 (the watcher's default);
   plus the full watcher (`watch(once=True)`: list the lake, rio-stac on every COG, load, checkpoint) over
   `--files` small COGs in a local lake, where metadata extraction dominates.
2. `search` — p50/p95 latency of a bbox+datetime query at `--search-items` items (loaded with pypgstac from
   generated ndjson; half owned by `alice`, half by `bob`): pgstac's `search()` SQL function directly, and
   through hrlc's STAC API (`hrlc.api.create_app`, uvicorn on 127.0.0.1) as an operator (every item) and as
   alice (the visibility rule of `hrlc.catalog.visibility` ANDed in: her half), with the ratio of their p50.

    .venv/bin/python benchmarks/ingest.py [--items 5000] [--files 300] [--search-items 100000] [--queries 200]

Uses databases `hrlc_bench_*` on the server of `--admin-dsn` and drops them at the end. Bounded loops only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg

ADMIN = os.environ.get("HRLC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
PROCESSING_EXT = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"


def new_db(admin: str, name: str) -> str:
    from pypgstac.db import PgstacDB
    from pypgstac.migrate import Migrate

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    dsn = admin.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists postgis; create extension if not exists btree_gist")
    with PgstacDB(dsn=dsn) as db:
        Migrate(db).run_migration()
    from hrlc.catalog import ingest
    from hrlc.db import migrations

    migrations.migrate(dsn, ingest.COMPONENT, ingest.MIGRATIONS)  # the watcher's checkpoints (`hrlc migrate`)
    return dsn


def drop_db(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def ensure_collections(dsn: str) -> None:
    from hrlc.catalog.ingest import Catalogue

    with Catalogue(dsn) as cat:
        cat.ensure_collections()


OWNERS = ("alice", "bob")


def synthetic_items(n: int, *, seed: int = 0, years: range = range(2015, 2025)) -> Iterator[dict[str, Any]]:
    """n product items of the layout's `fused-class-map-region` family on a 0.25° grid over Europe."""
    from hrlc.lake import layout

    rng = random.Random(seed)
    per_year = -(-n // len(years))
    side = int(per_year**0.5) + 1
    made = 0
    for year in years:
        for t in range(per_year):
            if made >= n:
                return
            col, row = t % side, t // side
            w, s = -10.0 + 0.25 * col, 35.0 + 0.25 * row
            e, nn = w + 0.25, s + 0.25
            region = f"T{col:03d}{row:03d}"
            key = layout.key("fused-class-map-region", year=year, region=region)
            yield {
                "type": "Feature",
                "stac_version": "1.1.0",
                "stac_extensions": [PROCESSING_EXT],
                "id": f"fused_class_map_{year}_{region}",
                "collection": "hrlc-fused-maps",
                "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, nn], [w, nn], [w, s]]]},
                "bbox": [w, s, e, nn],
                "properties": {
                    "datetime": f"{year}-07-02T12:00:00Z",
                    "start_datetime": f"{year}-01-01T00:00:00Z",
                    "end_datetime": f"{year}-12-31T23:59:59Z",
                    "hrlc:product": "fused-class-map-region",
                    "hrlc:year": year,
                    "hrlc:region": region,
                    "hrlc:processor": "fusion",
                    "hrlc:processor_version": "0.1.0",
                    "hrlc:inputs": [f"classified_map_optical_{year}_annual"],
                    "processing:level": "L3",
                    "proj:code": "EPSG:3035",
                    "eo:cloud_cover": round(rng.random() * 100, 1),
                    "hrlc:owners": [OWNERS[made % len(OWNERS)]],  # job products of two users
                },
                "assets": {"data": {"href": f"s3://bench-lake/{key}", "type": COG, "roles": ["data"]}},
                "links": [],
            }
            made += 1


def write_ndjson(path: Path, items: Iterator[dict[str, Any]]) -> int:
    n = 0
    with path.open("w") as f:
        for it in items:
            f.write(json.dumps(it, separators=(",", ":")) + "\n")
            n += 1
    return n


def pypgstac_load(dsn: str, ndjson: Path) -> float:
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods

    t0 = time.perf_counter()
    with PgstacDB(dsn=dsn) as db:
        Loader(db).load_items(str(ndjson), insert_mode=Methods.upsert)
    return time.perf_counter() - t0


def pypgstac_cli(dsn: str, ndjson: Path) -> float:
    exe = Path(sys.executable).with_name("pypgstac")
    t0 = time.perf_counter()
    subprocess.run(
        [str(exe), "load", "items", str(ndjson), "--method", "upsert", "--dsn", dsn],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def hrlc_commit(dsn: str, ndjson: Path, batch: int) -> float:
    """hrlc's ingest path from already-built items: batches of (items + checkpoint rows), one txn each."""
    import datetime as dt

    from hrlc.catalog.ingest import Catalogue, ObjectInfo, Outcome, _commit

    now = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    with Catalogue(dsn) as cat, ndjson.open() as f:
        buf: list[Outcome] = []
        for line in f:
            it = orjson.loads(line)  # as pypgstac's reader does
            key = it["assets"]["data"]["href"].removeprefix("s3://bench-lake/")
            buf.append(Outcome(ObjectInfo(key, f"etag-{it['id']}", 1, now), "loaded", item=it))
            if len(buf) >= batch:
                _commit(cat, "s3://bench-lake", buf)
                buf = []
        if buf:
            _commit(cat, "s3://bench-lake", buf)
        cat.run_queue()  # the partition statistics pypgstac refreshes inside each load (end of a scan)
        cat.update_extents(["hrlc-fused-maps"])  # what the watcher does at the end of a scan
    return time.perf_counter() - t0


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select count(*) from pgstac.items").fetchone()
    return int(row[0]) if row else 0


def watcher_files(dsn: str, n_files: int, tmp: Path) -> dict[str, Any]:
    """The full watcher over n small COGs in a local lake: list, rio-stac, load, checkpoint."""
    import numpy as np
    from rasterio.transform import from_origin

    from hrlc.catalog.ingest import watch
    from hrlc.lake import layout
    from hrlc.lake.store import LocalStore
    from hrlc.products.cog import write_cog

    store = LocalStore(tmp / "lake")
    write_cog(
        store,
        "seed.tif",
        np.full((64, 64), 3, dtype=np.uint8),
        crs=32631,
        transform=from_origin(500000.0, 4650000.0, 10.0, 10.0),
        categorical=True,
    )
    data = store.read_bytes("seed.tif")
    store.delete("seed.tif")
    for i in range(n_files):
        store.write_bytes(layout.key("fused-class-map-region", year=2030, region=f"W{i:05d}"), data)
    t0 = time.perf_counter()
    rep = watch(store, dsn, once=True)
    secs = time.perf_counter() - t0
    assert rep.loaded == n_files, rep.as_dict()
    # where the time goes: metadata extraction alone (rio-stac on every file)
    from hrlc.catalog.ingest import ItemBuilder, list_objects

    objs = list(list_objects(store))[: min(100, n_files)]
    b = ItemBuilder(store)
    t1 = time.perf_counter()
    for o in objs:
        b.build(o)
    extract = (time.perf_counter() - t1) / len(objs)
    return {
        "files": n_files,
        "seconds": round(secs, 3),
        "items_per_s": round(n_files / secs, 1),
        "extract_ms_per_file": round(extract * 1000, 2),
    }


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def queries(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        w, s = rng.uniform(-10, 14), rng.uniform(35, 59)
        year = rng.randint(2015, 2024)
        out.append(
            {
                "collections": ["hrlc-fused-maps"],
                "bbox": [round(w, 3), round(s, 3), round(w + 1, 3), round(s + 1, 3)],
                "datetime": f"{year}-03-01T00:00:00Z/{year}-05-31T23:59:59Z",
                "limit": 100,
            }
        )
    return out


def search_sql(dsn: str, qs: list[dict[str, Any]]) -> dict[str, Any]:
    lat, hits = [], []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("set search_path to pgstac, public")
        for q in qs[:5]:  # warm-up (plans, caches)
            conn.execute("select search(%s::jsonb)", [json.dumps(q)]).fetchone()
        for q in qs:
            t0 = time.perf_counter()
            row = conn.execute("select search(%s::jsonb)", [json.dumps(q)]).fetchone()
            lat.append((time.perf_counter() - t0) * 1000)
            hits.append(len(row[0]["features"]) if row else 0)
    return {
        "p50_ms": round(percentile(lat, 0.5), 2),
        "p95_ms": round(percentile(lat, 0.95), 2),
        "mean_hits": round(statistics.mean(hits), 1),
    }


def search_api(dsn: str, qs: list[dict[str, Any]], tmp: Path) -> dict[str, Any]:
    """The STAC API's latency as an operator (no visibility filter) and as the user alice (her items only: the
    `hrlc:owners` rule ANDed into pgstac's search), same queries, same server."""
    try:
        import httpx
        import uvicorn

        from hrlc.api import create_app
        from hrlc.api.openeo.auth import Authenticator
        from hrlc.api.openeo.users import User, hash_password, save_users
        from hrlc.settings import Settings
    except Exception as e:  # noqa: BLE001 - the API is another engineer's module; report, do not fail
        return {"skipped": f"{type(e).__name__}: {e}"}
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    # s3:// asset hrefs are presigned in responses (local signing, no request): dummy keys suffice
    users = tmp / "users.json"
    save_users(
        users,
        {
            "alice": User(hash_password("bench")),
            "olga": User(hash_password("bench"), frozenset({"operator"})),
        },
    )
    settings = Settings(
        catalog=dsn,
        s3_endpoint="http://127.0.0.1:9",
        s3_access_key_id="bench",
        s3_secret_access_key="bench",
        users_file=str(users),
        token_secret="bench-token-secret-of-32-characters-or-more",
    )
    auth = Authenticator(settings)
    as_user = {name: {"Authorization": f"Bearer basic//{auth.issue(name)}"} for name in ("olga", "alice")}
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and th.is_alive():
        time.sleep(0.05)
    if not server.started:
        return {"skipped": "the API server did not start"}
    out: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            for who, headers in as_user.items():
                lat, hits = [], []
                for q in qs[:5]:
                    c.post("/stac/search", json=q, headers=headers).raise_for_status()
                for q in qs:
                    t0 = time.perf_counter()
                    r = c.post("/stac/search", json=q, headers=headers)
                    lat.append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
                    hits.append(len(r.json()["features"]))
                key = "operator" if who == "olga" else "user"
                out[key] = {
                    "p50_ms": round(percentile(lat, 0.5), 2),
                    "p95_ms": round(percentile(lat, 0.95), 2),
                    "mean_hits": round(statistics.mean(hits), 1),
                }
    except Exception as e:  # noqa: BLE001
        return {"skipped": f"{type(e).__name__}: {e}"}
    finally:
        server.should_exit = True
        th.join(timeout=10)
    out["user_over_operator_p50"] = round(out["user"]["p50_ms"] / out["operator"]["p50_ms"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--search-items", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--admin-dsn", default=ADMIN)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hrlc-bench-"))
    names = [
        "hrlc_bench_pypgstac",
        "hrlc_bench_cli",
        "hrlc_bench_ingest100",
        "hrlc_bench_ingest500",
        "hrlc_bench_ingest1000",
        "hrlc_bench_watch",
        "hrlc_bench_search",
    ]
    try:
        nd = tmp / "items.ndjson"
        n = write_ndjson(nd, synthetic_items(a.items))
        dsns = {name: new_db(a.admin_dsn, name) for name in names[:6]}
        for d in dsns.values():
            ensure_collections(d)  # fresh collections in each database, outside the timings
        t_pg = pypgstac_load(dsns["hrlc_bench_pypgstac"], nd)
        t_cli = pypgstac_cli(dsns["hrlc_bench_cli"], nd)
        t_100 = hrlc_commit(dsns["hrlc_bench_ingest100"], nd, 100)
        t_500 = hrlc_commit(dsns["hrlc_bench_ingest500"], nd, 500)
        t_1000 = hrlc_commit(dsns["hrlc_bench_ingest1000"], nd, 1000)
        for name in names[:5]:
            assert count(dsns[name]) == n, name
        w = watcher_files(dsns["hrlc_bench_watch"], a.files, tmp)
        rate_pg = n / t_pg
        print(
            json.dumps(
                {
                    "benchmark": "ingest",
                    "items": n,
                    "pypgstac_loader_items_per_s": round(rate_pg, 1),
                    "pypgstac_cli_items_per_s": round(n / t_cli, 1),
                    "hrlc_ingest_batch100_items_per_s": round(n / t_100, 1),
                    "hrlc_ingest_batch500_items_per_s": round(n / t_500, 1),
                    "hrlc_ingest_batch1000_items_per_s": round(n / t_1000, 1),
                    "ratio_batch100": round((n / t_100) / rate_pg, 3),
                    "ratio_batch500": round((n / t_500) / rate_pg, 3),
                    "ratio_batch1000_default": round((n / t_1000) / rate_pg, 3),
                    "watcher_full": w,
                    "watcher_full_ratio": round(w["items_per_s"] / rate_pg, 4),
                }
            ),
            flush=True,
        )
        for name in names[:6]:
            drop_db(a.admin_dsn, name)

        dsn = new_db(a.admin_dsn, "hrlc_bench_search")
        ensure_collections(dsn)
        big = tmp / "search.ndjson"
        write_ndjson(big, synthetic_items(a.search_items, seed=2))
        t_load = pypgstac_load(dsn, big)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("analyze pgstac.items")
        total = count(dsn)
        qs = queries(a.queries)
        print(
            json.dumps(
                {
                    "benchmark": "search",
                    "items": total,
                    "load_s": round(t_load, 1),
                    "queries": len(qs),
                    "query": "bbox 1x1 deg + 3-month datetime, collections=[hrlc-fused-maps], limit 100",
                    "sql_search": search_sql(dsn, qs),
                    "api_search": search_api(dsn, qs, tmp),
                }
            ),
            flush=True,
        )
    finally:
        for name in names:
            with contextlib.suppress(Exception):
                drop_db(a.admin_dsn, name)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
