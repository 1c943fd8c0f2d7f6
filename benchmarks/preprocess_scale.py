"""Benchmark of the optical preprocessing's scaling (issue 13): peak memory and time per pixel against the AOI.

Why: the first step of the chain composites a year of scenes into 12 monthly COGs; a worker's memory must
depend on the block size (`settings.chunk_px`) and the number of dates, not on the AOI (or tile), or a
Sentinel-2 tile (10 980² px) never fits. For each `--sizes` N this script runs the optical preprocessing task of
`hrlc run`'s DAG over the synthetic repository of N² px (Sentinel-2, the same 73 dates for every size), in a
child process of its own, into an empty lake, and reads that child's peak RSS and CPU time (`wait4`). It prints
one JSON line per size and a summary with the ratios against the smallest size, measured in the same run.
`s_per_mpx` is the processor's own wall time (imports and start-up excluded) per Mpx; `cpu_s_per_mpx` the
child's CPU time per Mpx, steadier on a shared machine (wall time includes waiting for other processes).

    .venv/bin/python benchmarks/preprocess_scale.py [--sizes 512 1024 2048] [--chunk-px 1024]
        [--composite median|bap] [--workdir /tmp/hrlc-preprocess-scale]

Repositories are generated into `--workdir` (repo-N) unless there already, and reused as they are; lakes are
deleted after each size. To measure another version of hrlc with the same script, put its `src` first on
PYTHONPATH (e.g. `git archive BASE src | tar -x -C /tmp/base`, then `PYTHONPATH=/tmp/base/src`): the children
import it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from _child import measured, ratios


def preprocess(repo_root: Path, lake: Path, chunk_px: int | None, composite: str) -> None:
    """The child: the optical preprocessing task of the land-cover DAG over the repository at `repo_root`;
    prints its wall seconds as JSON."""
    from hrlc import sample
    from hrlc.catalog.static import StaticCatalog
    from hrlc.jobs.dag import land_cover_dag
    from hrlc.jobs.request import BoundingBox, LandCoverRequest
    from hrlc.lake.store import LocalStore
    from hrlc.processors.base import Context
    from hrlc.processors.optical_preprocessing import OpticalPreprocessing
    from hrlc.settings import Settings

    repo = sample.SampleRepository.open(repo_root)
    t = repo.transform
    request = LandCoverRequest(
        spatial_extent=BoundingBox.of(
            (t.c, t.f - t.a * repo.size, t.c + t.a * repo.size, t.f), f"EPSG:{repo.epsg}"
        ),
        crs=f"EPSG:{repo.epsg}",
        resolution=t.a,
        year=repo.year,
        source=str(repo.catalog),
        training=str(repo.training_points),
        sensor="sentinel2",
        composite=composite,
    )
    dag = land_cover_dag(request, tiled=False)  # the AOI in one grid (the tiles of a tiled job: scale.py)
    [task] = [task for task in dag.tasks if task.processor == OpticalPreprocessing.name]
    proc = OpticalPreprocessing()
    settings = Settings() if chunk_px is None else Settings(chunk_px=chunk_px)
    store = LocalStore(lake, settings)
    t0 = time.perf_counter()
    proc.run(proc.parse_params(task.params), Context(store=store, catalog=StaticCatalog(store)))
    print(json.dumps({"run_s": time.perf_counter() - t0, "chunk_px": settings.chunk_px}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--chunk-px", type=int, default=None, help="block size (default: the settings' chunk_px)")
    ap.add_argument("--composite", choices=["median", "bap"], default="median")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/hrlc-preprocess-scale"))
    ap.add_argument("--preprocess", nargs=2, metavar=("REPO", "LAKE"), help=argparse.SUPPRESS)  # the child
    a = ap.parse_args()
    if a.preprocess:
        preprocess(Path(a.preprocess[0]), Path(a.preprocess[1]), a.chunk_px, a.composite)
        return

    rows: list[dict[str, Any]] = []
    for size in sorted(a.sizes):
        repo, lake = a.workdir / f"repo-{size}", a.workdir / f"lake-{size}"
        if not repo.exists():
            from hrlc import sample

            sample.generate(repo, size=size)
        shutil.rmtree(lake, ignore_errors=True)
        options = ["--composite", a.composite] + (["--chunk-px", str(a.chunk_px)] if a.chunk_px else [])
        m = measured(__file__, ["--preprocess", str(repo), str(lake), *options])
        cpu, rss, out = m.cpu_s, m.peak_rss_gb, m.out
        shutil.rmtree(lake, ignore_errors=True)
        mpx = size * size / 1e6
        row = {"size": size, "mpx": round(mpx, 3), "chunk_px": out["chunk_px"], "run_s": round(out["run_s"], 1),
               "cpu_s": round(cpu, 1), "peak_rss_gb": round(rss, 3), "s_per_mpx": round(out["run_s"] / mpx, 2),
               "cpu_s_per_mpx": round(cpu / mpx, 2)}  # fmt: skip
        print(json.dumps(row), flush=True)
        rows.append(row)
    summary = ratios("preprocess_scale", rows, composite=a.composite)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
