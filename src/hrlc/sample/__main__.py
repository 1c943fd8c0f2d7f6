"""`python -m hrlc.sample ROOT [--size N] ...`: generate the synthetic repository, report the time taken."""

from __future__ import annotations

import argparse
import sys
import time

from hrlc.sample.grid import X0, Y0
from hrlc.sample.repository import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hrlc.sample", description=__doc__)
    parser.add_argument("root")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--year", type=int, default=2021)
    parser.add_argument("--landsat-year", type=int, default=2018)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cloud-cover", type=float, nargs=2, default=(0.30, 0.50))
    parser.add_argument(
        "--every", type=int, default=1, help="keep every n-th date of each sensor (3: 25 Sentinel-2 dates)"
    )
    parser.add_argument(
        "--origin",
        type=float,
        nargs=2,
        metavar=("EASTING", "NORTHING"),
        default=(X0, Y0),
        help="upper-left corner in UTM 33N metres, a multiple of 30 (439200 5160600: with --size 10980 the "
        "repository is the product-grid tile utm33n-109800-4-46, one Sentinel-2-sized tile)",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        print(f"\r{done}/{total} {time.perf_counter() - t0:6.1f} s", end="", file=sys.stderr, flush=True)

    repo = generate(
        args.root,
        size=args.size,
        year=args.year,
        landsat_year=args.landsat_year,
        seed=args.seed,
        cloud_cover=tuple(args.cloud_cover),
        every=args.every,
        origin=(args.origin[0], args.origin[1]),
        progress=progress,
    )
    print(f"\n{repo.catalog} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
