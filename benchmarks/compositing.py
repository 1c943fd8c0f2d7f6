"""Benchmark of the monthly median composite (`hrlc.chain.optical.composite_median`).

Why: compositing reads every observation of every band once, so its speed is bounded by memory bandwidth;
this script compares the numba kernel with the naive xarray recipe and with a plain memory copy of the
same bytes, and prints ONE JSON line.

    .venv/bin/python benchmarks/compositing.py [--dates 72 --bands 4 --size 1024]

Cube: uint16 reflectance-like DN (seeded), ~40 % random invalid mask, one date every 5 days from 1 January.
Timings are the best of `--repeat` runs after one warm-up call (numba JIT / cache load). The xarray
baseline (`cube.where(~invalid).resample(time="1MS").median()`, float conversion included) is first timed
on a crop of `--crop` pixels a side; if that predicts more than `--xarray-limit` seconds for the full size,
the crop time scaled linearly by pixel count is reported and `xarray_scaled_from` says so.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numba
import numpy as np
import pandas as pd
import xarray as xr

from hrlc.chain.optical import composite_median, period_index


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def make_cube(dates: int, bands: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = np.empty((dates, bands, size, size), dtype=np.uint16)
    for b in range(bands):  # per band so the int64 temporaries stay small
        data[:, b] = rng.integers(100, 6000, size=(dates, size, size), dtype=np.uint16)
    invalid = rng.random((dates, size, size), dtype=np.float32) < 0.4
    times = np.datetime64("2021-01-01") + np.arange(dates) * np.timedelta64(5, "D")
    return data, invalid, times


def xarray_baseline(data: np.ndarray, invalid: np.ndarray, times: np.ndarray) -> Callable[[], object]:
    _, nb, ny, nx = data.shape
    cube = xr.Dataset(
        {f"b{b}": (("time", "y", "x"), data[:, b]) for b in range(nb)},
        coords={"time": pd.DatetimeIndex(times), "y": np.arange(ny), "x": np.arange(nx)},
    )
    inv = xr.DataArray(invalid, dims=("time", "y", "x"), coords={"time": cube.time})
    return lambda: cube.where(~inv).resample(time="1MS").median().compute()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dates", type=int, default=72)
    ap.add_argument("--bands", type=int, default=4)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--xarray-limit", type=float, default=60.0)
    args = ap.parse_args()

    data, invalid, times = make_cube(args.dates, args.bands, args.size)
    year = int(times[0].astype("datetime64[Y]").astype(int) + 1970)
    period = period_index(times, year, "month")

    # (a) ours
    composite_median(data[:, :, :8, :8], invalid[:, :8, :8], period, 12)  # JIT / cache load
    composite_median(data, invalid, period, 12)  # warm-up at full size (page faults, thread pool)
    seconds = best_of(lambda: composite_median(data, invalid, period, 12), args.repeat)

    # (c) memcpy of the same bytes into a pre-faulted buffer
    buf = np.empty_like(data)
    np.copyto(buf, data)
    memcpy_seconds = best_of(lambda: np.copyto(buf, data), args.repeat)

    # (b) naive xarray; probe on a crop first (and check that both give the same medians there)
    crop = min(args.crop, args.size)
    cdata = np.ascontiguousarray(data[:, :, :crop, :crop])
    cinv = np.ascontiguousarray(invalid[:, :crop, :crop])
    crop_fn = xarray_baseline(cdata, cinv, times)
    t0 = time.perf_counter()
    ref = crop_fn()
    crop_seconds = time.perf_counter() - t0
    ours = composite_median(cdata, cinv, period, 12)[0]
    expected = np.stack([ref[f"b{b}"].values for b in range(args.bands)], axis=1)  # (month, b, y, x)
    expected = np.where(np.isnan(expected), 0, np.floor(expected + 0.5))  # documented rounding, nodata 0
    months = period_index(ref["time"].values, year, "month")  # resample only has months with dates
    same = bool(np.array_equal(ours[months], expected))
    if args.repeat > 1:
        crop_seconds = min(crop_seconds, best_of(crop_fn, args.repeat - 1))
    scale = (args.size / crop) ** 2
    scaled_from: int | None = None
    if crop == args.size:
        xarray_seconds = crop_seconds
    elif crop_seconds * scale > args.xarray_limit:
        xarray_seconds = crop_seconds * scale
        scaled_from = crop
    else:
        xarray_seconds = best_of(xarray_baseline(data, invalid, times), args.repeat)

    obs = data.size  # t * b * y * x
    result = {
        "benchmark": "compositing",
        "dates": args.dates,
        "bands": args.bands,
        "size": args.size,
        "mpx_obs_per_s": round(obs / seconds / 1e6, 1),
        "seconds": round(seconds, 4),
        "xarray_seconds": round(xarray_seconds, 3),
        "xarray_scaled_from": scaled_from,
        "memcpy_seconds": round(memcpy_seconds, 4),
        "ratio_vs_xarray": round(xarray_seconds / seconds, 1),
        "fraction_of_memcpy": round(memcpy_seconds / seconds, 3),
        "threads": numba.get_num_threads(),
        "same_as_xarray_on_crop": same,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
