"""Benchmark of the whole chain's scaling (issue 13): peak memory and time per pixel against the AOI's size.

Why: HRLC maps continents; a worker's memory must not grow with the AOI (or tile) it maps, and the time per
pixel must stay flat, or a Sentinel-2 tile (10 980² px) never fits a worker. For each `--sizes` N this script
generates the synthetic repository of N² px (the same dates for every size; timed apart), then runs the optical
land-cover chain on it — optical preprocessing and features per tile of `--tile-px` (default 1024 px: 1, 4 and
16 tiles), then the classification of the AOI, the DAG of `hrlc run` through the in-process runner — in a child
process of its own, and reads that child's peak RSS (`wait4`) and wall time.
It prints one JSON line per size and a summary with the ratios against the smallest size, measured in the same
run, and the issue's goals: RSS(largest) ≤ 1.3 × RSS(smallest), time per pixel within ±25 % of the smallest's.

    .venv/bin/python benchmarks/scale.py [--sizes 1024 2048 4096] [--tile-px 1024] [--workdir /tmp/hrlc-scale]

Repositories are kept in `--workdir` between runs (generation is deterministic, so a rerun reuses them); each
chain run starts from an empty lake.

One full Sentinel-2-sized tile (10 980² px, 25 dates), the repository generated on the tile (`--origin`: its
corner is the corner of product-grid tile utm33n-109800-4-46, so the AOI is that one tile, not parts of four):

    .venv/bin/python benchmarks/scale.py --sizes 10980 --tile-px 10980 --every 3 --origin 439200 5160600 \
        --drop-inputs --workdir /work/scale-full

`--drop-inputs` runs the chain in three parts and deletes what no later step reads: the optical preprocessing,
then the repository's scenes are deleted (it is then incomplete: its manifest goes too, a rerun generates it
again); the features, then the composites are deleted; the rest. A tile-year's scenes (40 GB), composites
(22 GB) and feature stack (47 GB) do not fit this machine's disk together.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from _child import measured


def run_chain(repo_root: Path, lake: Path, tile_px: int, drop_inputs: bool = False) -> None:
    """The child: the land-cover chain on the repository at `repo_root` into the lake at `lake`, in tiles of
    `tile_px` pixels; `drop_inputs`: in three parts, each deleting the inputs no later step reads (the
    repository's scenes after the optical preprocessing, the composites after the features). Prints the seconds
    per processor as JSON."""
    from rich.console import Console

    from hrlc import sample
    from hrlc.backends import Backends
    from hrlc.jobs.dag import Dag, land_cover_dag
    from hrlc.jobs.request import BoundingBox, LandCoverRequest
    from hrlc.jobs.runner import InProcessRunner
    from hrlc.lake.store import LocalStore
    from hrlc.settings import Settings

    repo = sample.SampleRepository.open(repo_root)
    t = repo.transform
    bbox = (t.c, t.f - t.a * repo.size, t.c + t.a * repo.size, t.f)
    request = LandCoverRequest(
        spatial_extent=BoundingBox.of(bbox, f"EPSG:{repo.epsg}"),
        crs=f"EPSG:{repo.epsg}",
        resolution=t.a,
        year=repo.year,
        source=str(repo.catalog),
        training=str(repo.training_points),
        sensor="sentinel2",
        tile_size=round(tile_px * t.a),
    )
    settings = Settings()
    backends = Backends.from_settings(settings, store=LocalStore(lake, settings))
    dag = land_cover_dag(request)
    seconds: dict[str, float] = {}
    try:
        runner = InProcessRunner(backends.store, backends.catalog, console=Console(quiet=True))
        if drop_inputs:
            preprocessing = [t for t in dag.tasks if t.processor == "optical-preprocessing"]
            for r in runner.run(Dag(preprocessing)).tasks:
                seconds[r.task_id] = r.seconds
            (repo_root / "sample.json").unlink()  # no longer complete: a rerun generates it again
            for scene in repo.catalog.parent.glob("*/*/*"):  # every collection's scenes (Landsat's too)
                if scene.suffix.lower() == ".tif":
                    scene.unlink()
            features = [t for t in dag.tasks if t.processor == "features"]
            for r in runner.run(Dag(preprocessing + features)).tasks:
                if not r.skipped:
                    seconds[r.task_id] = r.seconds
            for composite in (lake / "preprocessed").rglob("*.tif"):  # no later step reads them
                composite.unlink()
            done = {t.id for t in preprocessing + features}  # the rest, without what it no longer needs
            dag = Dag(
                [
                    replace(t, depends_on=tuple(set(t.depends_on) - done))
                    for t in dag.tasks
                    if t.id not in done
                ]
            )
        for r in runner.run(dag).tasks:
            if not r.skipped:
                seconds[r.task_id] = r.seconds
    finally:
        backends.close()
    per_processor: dict[str, float] = {}
    for task in land_cover_dag(request).tasks:
        per_processor[task.processor] = round(per_processor.get(task.processor, 0.0) + seconds[task.id], 1)
    lake_gb = sum(f.stat().st_size for f in lake.rglob("*") if f.is_file()) / 1e9
    print(json.dumps({"seconds_per_processor": per_processor, "lake_gb": round(lake_gb, 1)}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/hrlc-scale"))
    ap.add_argument("--tile-px", type=int, default=1024, help="side of the product grid's tiles, pixels")
    ap.add_argument("--every", type=int, default=1, help="keep every n-th date of the synthetic year (3: 25)")
    ap.add_argument("--keep", action="store_true", help="keep the lakes (the repositories are always kept)")
    ap.add_argument(
        "--origin", type=float, nargs=2, metavar=("EASTING", "NORTHING"),
        help="the repositories' upper-left corner (UTM 33N m; default: the generator's)",
    )  # fmt: skip
    ap.add_argument(
        "--drop-inputs", action="store_true",
        help="delete the scenes after the preprocessing, the composites after the features (disk: a full tile)",
    )  # fmt: skip
    ap.add_argument(
        "--chain", nargs=3, metavar=("REPO", "LAKE", "TILE_PX"), help=argparse.SUPPRESS
    )  # the child
    ap.add_argument("--generate", nargs=2, metavar=("ROOT", "SIZE"), help=argparse.SUPPRESS)  # the child
    a = ap.parse_args()
    if a.chain:
        run_chain(Path(a.chain[0]), Path(a.chain[1]), int(a.chain[2]), a.drop_inputs)
        return
    if a.generate:
        from hrlc import sample

        corner = (a.origin[0], a.origin[1]) if a.origin else (sample.grid.X0, sample.grid.Y0)
        sample.generate(Path(a.generate[0]), size=int(a.generate[1]), every=a.every, origin=corner)
        return

    rows: list[dict[str, Any]] = []
    for size in sorted(a.sizes):
        suffix = f"{size}" if a.every == 1 else f"{size}-e{a.every}"
        if a.origin:
            suffix += f"-at{a.origin[0]:.0f}-{a.origin[1]:.0f}"
        repo, lake = a.workdir / f"repo-{suffix}", a.workdir / f"lake-{suffix}"
        gen_s = gen_gb = None
        if not (repo / "sample.json").exists():  # generation is deterministic: a kept repository is reused
            at = ["--origin", *map(str, a.origin)] if a.origin else []
            gen = measured(__file__, ["--generate", str(repo), str(size), "--every", str(a.every), *at])
            gen_s, gen_gb = round(gen.wall_s, 1), round(gen.peak_rss_gb, 2)
        shutil.rmtree(lake, ignore_errors=True)
        drop = ["--drop-inputs"] if a.drop_inputs else []
        m = measured(__file__, ["--chain", str(repo), str(lake), str(a.tile_px), *drop])
        wall, rss, cpu = m.wall_s, m.peak_rss_gb, m.cpu_s
        mpx = size * size / 1e6
        row = {"size": size, "mpx": round(mpx, 3), "chain_s": round(wall, 1), "chain_peak_rss_gb": round(rss, 2),
               "s_per_mpx": round(wall / mpx, 2), "cpu_s_per_mpx": round(cpu / mpx, 2),
               "px_per_s": round(size * size / wall),
               "tiles": (-(-size // a.tile_px)) ** 2, "generate_s": gen_s, "generate_peak_rss_gb": gen_gb,
               **m.out}  # fmt: skip
        print(json.dumps(row), flush=True)
        rows.append(row)
        if not a.keep:
            shutil.rmtree(lake, ignore_errors=True)
    small, large = rows[0], rows[-1]
    rss_ratio = large["chain_peak_rss_gb"] / small["chain_peak_rss_gb"]
    per_px = [r["s_per_mpx"] / small["s_per_mpx"] for r in rows]
    cpu_per_px = [r["cpu_s_per_mpx"] / small["cpu_s_per_mpx"] for r in rows]
    summary = {
        "rss_ratio_largest_to_smallest": round(rss_ratio, 2),
        "time_per_px_ratios": [round(r, 2) for r in per_px],
        "cpu_time_per_px_ratios": [round(r, 2) for r in cpu_per_px],
        "goal_rss_ratio_le_1.3": rss_ratio <= 1.3,
        "goal_time_per_px_within_25pct": all(0.75 <= r <= 1.25 for r in per_px),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
