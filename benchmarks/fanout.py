"""Benchmark of a tiled job's fan-out over workers (issue 13): the same 4-tile job with one and with two worker
processes per processor, on the platform (RabbitMQ, the PostgreSQL job store, worker processes).

Why: a job is tasks per tile (optical preprocessing and features of each tile, the model trained once, each tile
mapped, the AOI's mosaic), published to RabbitMQ as soon as their inputs exist, so idle workers take a job's tiles
in parallel. For each worker count this script starts `hrlc worker` processes for the chain's processors and a
status consumer, submits the `hrlc_land_cover` job of the synthetic repository of `--size`² px in tiles of half its
side (2 x 2 tiles) into an empty lake, and measures the time from `start_job` to `finished`. It prints one JSON line
per worker count and the ratio of the two (goal ≤ 0.65), measured in the same run, and checks that both maps are
equal.

    .venv/bin/python benchmarks/fanout.py [--size 1024] [--workdir /tmp/hrlc-fanout] [--pin]

A worker's task uses every core of its machine (dask threads, LightGBM, GDAL), so on one machine a second set of
workers gains nothing: what the ratio measures is more machines. `--pin` emulates them on one multi-core
machine: the k-th set of workers (one per processor) runs on core k alone (CPU affinity, which dask's and
OpenMP's thread counts follow), so one set is a one-core machine and two sets are two; the status consumer and
the job service stay unpinned (they wait on queues).

Needs PostgreSQL (a database `hrlc_fanout_<pid>` is created and dropped; HRLC_PG_ADMIN, default
postgresql://postgres@127.0.0.1:5432/postgres) and RabbitMQ (HRLC_BROKER_URL), as `scripts/services.sh` starts them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import rasterio

from hrlc import sample
from hrlc.jobs import jobstore
from hrlc.jobs.broker import Topology, delete
from hrlc.jobs.dag import LAND_COVER_PROCESSORS
from hrlc.jobs.service import JobService

PROCESSORS = list(LAND_COVER_PROCESSORS)
USER = "bench"


def _process(repo: sample.SampleRepository) -> dict[str, Any]:
    t = repo.transform
    w, n = t.c, t.f
    e, s = w + t.a * repo.size, n - t.a * repo.size
    args = {
        "spatial_extent": {"west": w, "south": s, "east": e, "north": n, "crs": repo.epsg},
        "crs": repo.epsg,
        "resolution": t.a,
        "year": repo.year,
        "sensor": "sentinel2",
        "source": str(repo.catalog),
        "training": str(repo.training_points),
        "tile_size": round(t.a * repo.size / 2),
    }
    return {"process_graph": {"lc": {"process_id": "hrlc_land_cover", "arguments": args, "result": True}}}


def _on_core(core: int | None) -> Any:
    """A `preexec_fn` running the child on `core` alone (None: no pinning)."""
    return None if core is None else (lambda: os.sched_setaffinity(0, {core}))


def run_job(
    dsn: str, repo: sample.SampleRepository, workdir: Path, workers: int, pin: bool
) -> tuple[float, np.ndarray]:
    """(seconds from start_job to finished, the class map) of the job with `workers` processes per processor
    (`pin`: the k-th process of each processor on core k)."""
    lake = workdir / f"lake-{workers}"
    shutil.rmtree(lake, ignore_errors=True)
    topo = Topology(f"hrlcfanout{os.getpid()}w{workers}")
    env = {**os.environ, "HRLC_STORE": str(lake), "HRLC_CATALOG": "static", "HRLC_JOBS_DSN": dsn,
           "HRLC_BROKER_PREFIX": topo.prefix}  # fmt: skip
    log = open(workdir / f"workers-{workers}.log", "ab")  # noqa: SIM115 - closed below
    cores = sorted(os.sched_getaffinity(0))
    if pin and workers > len(cores):
        raise SystemExit(f"--pin needs a core per worker set: {workers} sets, {len(cores)} cores")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hrlc.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_on_core(core),
        )
        for args, core in [(["status-consumer"], None)]
        + [
            (["worker", "--processor", p], cores[k] if pin else None)
            for p in PROCESSORS
            for k in range(workers)
        ]
    ]
    service = JobService(dsn, topology=topo)
    try:
        time.sleep(5)  # the workers import and connect
        job = service.create_job(USER, _process(repo)).id
        t0 = time.perf_counter()
        service.start_job(USER, job)
        while (status := service.get_job(USER, job).status) not in ("finished", "error", "canceled"):
            time.sleep(0.2)
        seconds = time.perf_counter() - t0
        if status != "finished":
            raise SystemExit(f"the job ended {status}: {service.logs(USER, job)[-3:]}")
        # the AOI's map (item id with the AOI's `aoi-` space), not the tiles' (their tile ids)
        maps = [Path(h) for h in service.results(USER, job) if Path(h).name.startswith("classified_map_")]
        [href] = [m for m in maps if "_aoi-" in m.name]
        item = json.loads(Path(href).read_text())
        with rasterio.open(item["assets"]["data"]["href"]) as src:
            return seconds, src.read(1)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        log.close()
        service.close()
        delete(topo, PROCESSORS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/hrlc-fanout"))
    ap.add_argument(
        "--pin", action="store_true", help="the k-th set of workers on core k alone: sets as machines"
    )
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    root = a.workdir / f"repo-{a.size}"
    repo = (
        sample.SampleRepository.open(root)
        if (root / "sample.json").exists()
        else sample.generate(root, size=a.size)
    )
    admin = os.environ.get("HRLC_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"hrlc_fanout_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    dsn = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        jobstore.migrate(dsn)
        rows, maps = [], []
        for workers in (1, 2):
            seconds, class_map = run_job(dsn, repo, a.workdir, workers, a.pin)
            row = {"size": a.size, "tiles": 4, "workers_per_processor": workers, "pinned": a.pin,
                   "job_s": round(seconds, 1),
                   "px_per_s": round(a.size**2 / seconds)}  # fmt: skip
            print(json.dumps(row), flush=True)
            rows.append(row)
            maps.append(class_map)
        ratio = rows[1]["job_s"] / rows[0]["job_s"]
        summary = {"benchmark": "fanout", "time_ratio_2_to_1_workers": round(ratio, 2),
                   "goal_le_0.65": ratio <= 0.65, "maps_equal": bool(np.array_equal(maps[0], maps[1]))}  # fmt: skip
        print(json.dumps(summary), flush=True)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


if __name__ == "__main__":
    main()
