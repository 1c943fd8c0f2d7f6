"""Benchmark of the synthetic repository's scaling (issue 13): peak memory and time per pixel against its size.

Why: the chain's scale tests need a full Sentinel-2 tile-year (10 980² px) generated on a worker, so
`hrlc.sample.generate` must stream: its memory may grow only with the landscape it holds (10 bytes a pixel),
not with the scenes (~40 bytes a pixel and band while rendered whole). For each `--sizes` N this script runs
`generate(root, size=N)` (default dates: 73 Sentinel-2 + 46 Landsat scenes) in a child process of its own and
reads that child's peak RSS, wall and CPU time (`wait4`). It prints one JSON line per size and a summary with
the ratios against the smallest size, measured in the same run. CPU seconds are printed beside wall seconds
because the machine is shared: wall time includes waiting for the other processes.

    .venv/bin/python benchmarks/sample_scale.py [--sizes 512 1024 2048] [--workdir /tmp/hrlc-sample-scale]
    .venv/bin/python benchmarks/sample_scale.py --sizes 512 10980 --drop-scenes   # a tile-year on a small disk

The repository is deleted after each size. `--drop-scenes` deletes each scene's files as soon as they are
written (a tile-year is ~1 GB of COGs per Mpx), counting their bytes for `disk_gb`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from _child import measured, ratios


def generate(root: Path, size: int, drop_scenes: bool) -> None:
    """The child: generate the repository of `size`² px at `root`; print its bytes on disk as JSON."""
    from hrlc import sample

    dropped = 0
    seen: dict[Path, None] = {}  # scene folders in the order they appeared
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        nonlocal dropped
        if (
            drop_scenes
        ):  # one scene's COGs are in the making while the next renders; rows files go when written
            seen.update(dict.fromkeys(sorted(set((root / "stac").glob("*/*")) - seen.keys())))
            for folder in list(seen)[:-2]:
                files = list(folder.iterdir()) if folder.exists() else []
                if files and not any(f.name.endswith(".rows.tif") for f in files):
                    dropped += sum(f.stat().st_size for f in files)
                    shutil.rmtree(folder)
        print(
            f"\r{size}: {done}/{total} {time.perf_counter() - t0:7.0f} s", end="", file=sys.stderr, flush=True
        )

    sample.generate(root, size=size, progress=progress)
    print(file=sys.stderr)
    kept = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    print(json.dumps({"disk_bytes": kept + dropped}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/hrlc-sample-scale"))
    ap.add_argument("--drop-scenes", action="store_true", help="delete each scene's files once written")
    ap.add_argument("--generate", nargs=2, metavar=("ROOT", "SIZE"), help=argparse.SUPPRESS)  # the child
    a = ap.parse_args()
    if a.generate:
        generate(Path(a.generate[0]), int(a.generate[1]), a.drop_scenes)
        return

    rows: list[dict[str, Any]] = []
    for size in sorted(a.sizes):
        root = a.workdir / f"repo-{size}"
        shutil.rmtree(root, ignore_errors=True)
        child = ["--generate", str(root), str(size)] + (["--drop-scenes"] if a.drop_scenes else [])
        m = measured(__file__, child)
        wall, cpu, rss, out = m.wall_s, m.cpu_s, m.peak_rss_gb, m.out
        shutil.rmtree(root, ignore_errors=True)
        mpx = size * size / 1e6
        row = {"size": size, "mpx": round(mpx, 3), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
               "peak_rss_gb": round(rss, 3), "s_per_mpx": round(wall / mpx, 2),
               "cpu_s_per_mpx": round(cpu / mpx, 2), "disk_gb": round(out["disk_bytes"] / 1e9, 2)}  # fmt: skip
        print(json.dumps(row), flush=True)
        rows.append(row)
    summary = ratios("sample_scale", rows)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
