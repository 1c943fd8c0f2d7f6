"""Benchmark of the features step's scaling (issue 13): peak memory and time per pixel against the AOI.

Why: the second step of the chain turns a year of composites into the feature stack (10 bands + 6 indices per
month, 24 annual statistics: 216 float32 planes, 864 MB per Mpx); read, computed and written whole, a
Sentinel-2 tile's stack (10 980² px) needs ~100 GB. Computed and written block by block (`settings.chunk_px`),
a worker's memory must depend on the block size and the number of periods, not on the AOI. For each `--sizes` N
this script makes the composites of the synthetic repository of N² px once (the optical preprocessing task of
`hrlc run`'s DAG, in a child process; reused when there), then runs the features task of the same DAG alone in
a child process of its own and reads that child's peak RSS and CPU time (`wait4`). It prints one JSON line per
size and a summary with the ratios against the smallest size, measured in the same run. `s_per_mpx` is the
processor's own wall time (imports and start-up excluded) per Mpx; `cpu_s_per_mpx` the child's CPU time per
Mpx, steadier on a shared machine. `rss_imports_gb` is the child's peak RSS before the task started.

    .venv/bin/python benchmarks/features_scale.py [--sizes 512 1024 2048] [--chunk-px 512]
        [--workdir /tmp/hrlc-features-scale]

RSS stops growing with the AOI once the AOI holds a whole block: with the default `chunk_px` (1024) a 512² AOI
is one block of 512², smaller than the others' blocks; `--chunk-px 512` makes every size's blocks the same.
Before the sizes, one unmeasured run of the smallest size loads the numba kernels' cache. Repositories and
composites stay in `--workdir` (repo-N, lake-N) for the next run. To measure another version of hrlc with the
same script, put its `src` first on PYTHONPATH (e.g. `git archive BASE src | tar -x -C /tmp/base`, then
`PYTHONPATH=/tmp/base/src`): the children import it.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

from _child import measured, ratios


def _dag(repo_root: Path) -> Any:
    from hrlc import sample
    from hrlc.jobs.dag import land_cover_dag
    from hrlc.jobs.request import BoundingBox, LandCoverRequest

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
    )
    return land_cover_dag(request, tiled=False)  # the AOI in one grid (the tiles of a tiled job: scale.py)


def run_task(repo_root: Path, lake: Path, processor: str, chunk_px: int | None) -> None:
    """The child: the `processor` task of the land-cover DAG over the repository at `repo_root`, into `lake`;
    prints its wall seconds and the peak RSS before it as JSON."""
    from hrlc.catalog.static import StaticCatalog
    from hrlc.lake.store import LocalStore
    from hrlc.processors.base import Context, registry
    from hrlc.settings import Settings

    [task] = [task for task in _dag(repo_root).tasks if task.processor == processor]
    proc = registry()[processor]()
    settings = Settings() if chunk_px is None else Settings(chunk_px=chunk_px)
    store = LocalStore(lake, settings)
    params = proc.parse_params(task.params)
    rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GB
    t0 = time.perf_counter()
    proc.run(params, Context(store=store, catalog=StaticCatalog(store)))
    print(
        json.dumps(
            {"run_s": time.perf_counter() - t0, "chunk_px": settings.chunk_px, "rss_imports": rss_imports}
        )
    )


def composites(workdir: Path, size: int) -> tuple[Path, Path]:
    """The repository of `size`² px and a lake with its composites, made unless there (`done` marks a lake
    whose preprocessing finished)."""
    repo, lake = workdir / f"repo-{size}", workdir / f"lake-{size}"
    if not (lake / "done").exists():
        from hrlc import sample

        sample.generate(repo, size=size)
        measured(__file__, ["--task", str(repo), str(lake), "optical-preprocessing"])
        (lake / "done").touch()
    return repo, lake


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--chunk-px", type=int, default=None, help="block size (default: the settings' chunk_px)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/hrlc-features-scale"))
    ap.add_argument("--task", nargs=3, metavar=("REPO", "LAKE", "PROCESSOR"), help=argparse.SUPPRESS)  # child
    a = ap.parse_args()
    if a.task:
        run_task(Path(a.task[0]), Path(a.task[1]), a.task[2], a.chunk_px)
        return

    sizes = sorted(a.sizes)
    lakes = {size: composites(a.workdir, size) for size in sizes}
    options = ["--chunk-px", str(a.chunk_px)] if a.chunk_px else []
    measured(
        __file__, ["--task", *map(str, lakes[sizes[0]]), "features", *options]
    )  # warm-up: numba's cache, page cache
    rows: list[dict[str, Any]] = []
    for size in sizes:
        m = measured(__file__, ["--task", *map(str, lakes[size]), "features", *options])
        cpu, rss, out = m.cpu_s, m.peak_rss_gb, m.out
        mpx = size * size / 1e6
        row = {"size": size, "mpx": round(mpx, 3), "chunk_px": out["chunk_px"], "run_s": round(out["run_s"], 1),
               "cpu_s": round(cpu, 1), "peak_rss_gb": round(rss, 3), "rss_imports_gb": round(out["rss_imports"], 3),
               "s_per_mpx": round(out["run_s"] / mpx, 2), "cpu_s_per_mpx": round(cpu / mpx, 2)}  # fmt: skip
        print(json.dumps(row), flush=True)
        rows.append(row)
    summary = ratios("features_scale", rows, chunk_px=rows[0]["chunk_px"])
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
