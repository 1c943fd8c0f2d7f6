"""Benchmark of the classification step's scaling (issue 13): peak memory and time per pixel against the AOI size.

Why: a worker maps a whole tile (10 980² px x ~200 features) with the classification processor, so its memory
must depend on the block size and the number of features, not on the AOI. For each `--sizes` N this script
prepares a synthetic repository of N² px and runs the land-cover DAG up to the features (a child process,
not measured), then runs the classification task alone (`hrlc.processors.classification`: sampling, training,
held-out report, prediction, COGs, items) in a child process of its own and reads that child's peak RSS, wall
and CPU time (`wait4`). It prints one JSON line per size and a summary with the ratios against the smallest
size, measured in the same run. The child also reports its phases: `sample_s` (reading the samples),
`train_s` (training and the held-out report: their cost follows the number of samples, not the AOI) and
`map_s` (reading, predicting and writing the maps, block by block: the part that grows with the AOI), so
`map_s_per_mpx` is the throughput to compare across sizes. CPU seconds (`cpu_s`, `*_cpu_s`) are printed
beside wall seconds because the machine is shared: wall time includes waiting for the other processes (and
LightGBM's threads spin-wait for each other when the cores are taken, which makes `train_s` erratic).

    .venv/bin/python benchmarks/classify_scale.py [--sizes 512 1024 2048] [--workdir /tmp/hrlc-classify-scale]

Before the measured runs, one untimed run of the smallest size loads the numba kernels into their cache. The
prepared inputs stay in `--workdir/size-N` and are reused by the next run (`--clean` removes them at the end).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from _child import measured

TASK = "classification_task.json"  # the classification task of the DAG, saved by the preparing child


def prepare(root: Path, size: int) -> None:
    """The preparing child: the synthetic repository of `size`² px, the DAG up to the features in `root/lake`,
    and the classification task's params in `root/TASK`."""
    from rich.console import Console

    from hrlc import sample
    from hrlc.catalog.static import StaticCatalog
    from hrlc.jobs.dag import Dag, land_cover_dag
    from hrlc.jobs.request import BoundingBox, LandCoverRequest
    from hrlc.jobs.runner import InProcessRunner
    from hrlc.lake.store import LocalStore

    repo = sample.generate(root / "external", size=size, year=2021, seed=42)
    left, top, res = repo.transform.c, repo.transform.f, repo.transform.a
    request = LandCoverRequest.model_validate(
        {
            "spatial_extent": BoundingBox.of(
                (left, top - res * size, left + res * size, top), f"EPSG:{repo.epsg}"
            ),
            "crs": f"EPSG:{repo.epsg}",
            "resolution": res,
            "year": 2021,
            "source": str(repo.catalog),
            "training": str(repo.training_points),
            "sensor": "sentinel2",
            "seed": 42,
        }
    )
    dag = land_cover_dag(request, tiled=False)  # the AOI in one grid (the tiles of a tiled job: scale.py)
    [task] = [t for t in dag.tasks if t.processor == "classification"]
    store = LocalStore(root / "lake")
    InProcessRunner(store, StaticCatalog(store), console=Console(stderr=True, quiet=True)).run(
        Dag([t for t in dag.tasks if t is not task])
    )
    (root / TASK).write_text(json.dumps({"id": task.id, "params": task.params}))


def classify(root: Path) -> None:
    """The measured child: the classification task of `root` (its outputs rewritten); prints its phases."""
    import logging

    from hrlc.catalog.static import StaticCatalog
    from hrlc.lake.store import LocalStore
    from hrlc.processors.base import Context
    from hrlc.processors.classification import Classification

    task = json.loads((root / TASK).read_text())
    store = LocalStore(root / "lake")
    marks: list[tuple[float, float, float]] = []  # (fraction, wall s, CPU s) of each progress report
    t0, c0 = time.perf_counter(), time.process_time()
    proc = Classification()
    ctx = Context(
        store=store,
        catalog=StaticCatalog(store),
        progress=lambda f, _message: marks.append((f, time.perf_counter() - t0, time.process_time() - c0)),
        log=logging.getLogger("benchmark"),
    )
    proc.run(proc.parse_params(task["params"]), ctx)
    marks.append((2.0, time.perf_counter() - t0, time.process_time() - c0))

    def since(fraction: float, clock: int) -> float:  # wall (1) or CPU (2) s of the first report past it
        return next(m[clock] for m in marks if m[0] >= fraction)

    # the processor reports sampling at 0.1, training at 0.25 and the maps from 0.4 on
    phases = {
        f"{phase}{suffix}": since(end, clock) - since(start, clock)
        for phase, start, end in (("sample", 0.1, 0.25), ("train", 0.25, 0.4), ("map", 0.4, 2.0))
        for suffix, clock in (("_s", 1), ("_cpu_s", 2))
    }
    print(json.dumps({"task_s": marks[-1][1], **phases}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/hrlc-classify-scale"))
    ap.add_argument("--clean", action="store_true", help="remove the prepared inputs at the end")
    ap.add_argument("--prepare", nargs=2, metavar=("ROOT", "SIZE"), help=argparse.SUPPRESS)  # a child
    ap.add_argument("--classify", metavar="ROOT", help=argparse.SUPPRESS)  # the measured child
    a = ap.parse_args()
    if a.prepare:
        prepare(Path(a.prepare[0]), int(a.prepare[1]))
        return
    if a.classify:
        classify(Path(a.classify))
        return

    sizes = sorted(a.sizes)
    for size in sizes:
        root = a.workdir / f"size-{size}"
        if not (root / TASK).exists():
            print(f"preparing {size}² px in {root}", file=sys.stderr, flush=True)
            measured(__file__, ["--prepare", str(root), str(size)])
    measured(__file__, ["--classify", str(a.workdir / f"size-{sizes[0]}")])  # warm-up: numba caches

    rows: list[dict[str, Any]] = []
    for size in sizes:
        m = measured(__file__, ["--classify", str(a.workdir / f"size-{size}")])
        wall, cpu, rss, out = m.wall_s, m.cpu_s, m.peak_rss_gb, m.out
        mpx = size * size / 1e6
        row = {"size": size, "mpx": round(mpx, 3), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
               "peak_rss_gb": round(rss, 3), "s_per_mpx": round(wall / mpx, 2),
               "cpu_s_per_mpx": round(cpu / mpx, 2), "map_s_per_mpx": round(out["map_s"] / mpx, 2),
               "map_cpu_s_per_mpx": round(out["map_cpu_s"] / mpx, 2),
               **{k: round(v, 1) for k, v in out.items()}}  # fmt: skip
        print(json.dumps(row), flush=True)
        rows.append(row)
    if a.clean:
        for size in sizes:
            shutil.rmtree(a.workdir / f"size-{size}", ignore_errors=True)
    small = rows[0]
    summary = {
        "benchmark": "classify_scale",
        "sizes": [r["size"] for r in rows],
        "rss_ratios": [round(r["peak_rss_gb"] / small["peak_rss_gb"], 2) for r in rows],
        "s_per_mpx_ratios": [round(r["s_per_mpx"] / small["s_per_mpx"], 2) for r in rows],
        "cpu_s_per_mpx_ratios": [round(r["cpu_s_per_mpx"] / small["cpu_s_per_mpx"], 2) for r in rows],
        "map_s_per_mpx_ratios": [round(r["map_s_per_mpx"] / small["map_s_per_mpx"], 2) for r in rows],
        "map_cpu_s_per_mpx_ratios": [
            round(r["map_cpu_s_per_mpx"] / small["map_cpu_s_per_mpx"], 2) for r in rows
        ],
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
