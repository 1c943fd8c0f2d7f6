"""Benchmark of the training-set importer: features/s for N points vs a plain `GeoDataFrame.to_postgis`.

One shapefile of N random points (EPSG:32633, HRLC class codes, a sample_id and one text attribute) laid out
under the naming convention, imported into a FRESH PostGIS database each repeat by
(a) hrlc's importer (`hrlc.training.importer.import_training`: checksums, name/provider/CRS/geometry/label/
    duplicate checks, lon/lat copy, binary COPY into `training.trainingset` with its GiST and attribute
    indexes, provenance and status rows; migrations applied before the clock starts), and
(b) the baseline: `geopandas.read_file` (pyogrio) + `GeoDataFrame.to_postgis` (GeoAlchemy2 + SQLAlchemy,
    geopandas' own COPY path) into a new table without indexes or checks (also reported: the same plus a GiST
    index on the geometry and a btree on the class built afterwards).
Both timings include reading the file. Prints ONE JSON line with the best of `--repeats` runs of each:

    .venv/bin/python benchmarks/training_import.py [--points 100000] [--repeats 3]

Uses databases `hrlc_bench_training_*` on the server of `--admin-dsn` and drops them at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import shapely

from hrlc import legend
from hrlc.training import db
from hrlc.training.importer import import_training

ADMIN = os.environ.get("HRLC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
NAME = "bench_static_R1_2020_photo-interpreted_Polimi"
GOAL = 20_000


def make_points(n: int, folder: Path, seed: int = 0) -> Path:
    """N random points over a 100 km square of UTM 33N, as `folder/bench/<NAME>/<NAME>.shp` (+ .geojson-free)."""
    rng = np.random.default_rng(seed)
    x = 400_000 + rng.random(n) * 100_000
    y = 5_000_000 + rng.random(n) * 100_000
    codes = rng.choice(np.array(legend.CODES), size=n)
    gdf = gpd.GeoDataFrame(
        {
            "class_code": codes.astype(np.int32),
            "sample_id": [f"p{i:07d}" for i in range(n)],
            "interp": rng.choice(np.array(["visual", "field", "map"]), size=n),
        },
        geometry=shapely.points(x, y),
        crs="EPSG:32633",
    )
    d = folder / "bench" / NAME
    d.mkdir(parents=True)
    path = d / f"{NAME}.shp"
    gdf.to_file(path, engine="pyogrio")
    return path


def new_db(name: str) -> str:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    dsn = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists postgis")
    return dsn


def drop_db(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def time_hrlc(root: Path, dsn: str, n: int) -> float:
    db.migrate(dsn)
    t0 = time.perf_counter()
    report = import_training(root, dsn=dsn)
    elapsed = time.perf_counter() - t0
    [out] = report.outcomes
    if out.outcome != "imported" or out.n_features != n:
        raise SystemExit(f"hrlc import did not import {n} features: {out}")
    return elapsed


def time_baseline(shp: Path, dsn: str, n: int) -> tuple[float, float]:
    """(read + to_postgis, the same + a GiST index on the geometry and a btree on the class, built after)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        t0 = time.perf_counter()
        gdf = gpd.read_file(shp, engine="pyogrio")
        gdf.to_postgis("baseline_points", engine, if_exists="replace", index=False)
        elapsed = time.perf_counter() - t0
        with engine.begin() as conn:
            conn.execute(text("create index on baseline_points using gist (geometry)"))
            conn.execute(text("create index on baseline_points (class_code)"))
        indexed = time.perf_counter() - t0
        with engine.connect() as conn:
            count = conn.execute(text("select count(*) from baseline_points")).scalar_one()
    finally:
        engine.dispose()
    if count != n:
        raise SystemExit(f"baseline wrote {count} rows, not {n}")
    return elapsed, indexed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n = args.points
    ours, base, base_indexed = [], [], []
    with tempfile.TemporaryDirectory(prefix="hrlc-bench-training-") as tmp:
        shp = make_points(n, Path(tmp))
        for r in range(args.repeats):
            name = f"hrlc_bench_training_{os.getpid()}_{r}"
            try:
                ours.append(time_hrlc(Path(tmp), new_db(name), n))
                plain, indexed = time_baseline(shp, new_db(name + "_b"), n)
                base.append(plain)
                base_indexed.append(indexed)
            finally:
                drop_db(name)
                drop_db(name + "_b")
    best, best_base = min(ours), min(base)
    print(
        json.dumps(
            {
                "benchmark": "training_import",
                "points": n,
                "repeats": args.repeats,
                "hrlc_s": round(best, 3),
                "hrlc_features_per_s": round(n / best),
                "baseline_to_postgis_s": round(best_base, 3),
                "baseline_features_per_s": round(n / best_base),
                "ratio_vs_baseline": round(best_base / best, 2),
                "baseline_plus_indexes_s": round(min(base_indexed), 3),
                "ratio_vs_baseline_plus_indexes": round(min(base_indexed) / best, 2),
                "goal_features_per_s": GOAL,
                "meets_goal": n / best >= GOAL,
                "hrlc_all_s": [round(t, 3) for t in ours],
                "baseline_all_s": [round(t, 3) for t in base],
            }
        )
    )


if __name__ == "__main__":
    main()
