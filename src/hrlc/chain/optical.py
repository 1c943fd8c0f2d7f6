"""Optical preprocessing science: cloud/shadow masks and monthly/seasonal composites.

The HRLC chain classifies land cover from gap-free monthly (Sentinel-2) and seasonal (Landsat) composites.
This module turns a stack of single-date L2A/L2 observations into such composites: it reads the
per-pixel quality layers (Sentinel-2 SCL, Landsat Collection 2 QA_PIXEL) into an *invalid* mask, and
reduces each period to one value per pixel and band, either by the per-band **median** of the clear
observations or by **best-available-pixel** (BAP) selection of one whole observation. It is pure science:
numpy/xarray in, numpy/xarray out, no I/O and no knowledge of the lake, STAC or the processors.

Conventions
-----------
- Arrays are ``(t, y, x)`` for masks and ``(t, b, y, x)`` for stacks (time, band, row, column), C order.
- Values are digital numbers (DN) as delivered, typically uint16 surface reflectance scaled by 10 000
  (Sentinel-2 L2A; note that from processing baseline 04.00 the L2A DN carry a +1000 offset, which the
  caller removes or not: compositing is insensitive to it except for the BAP haze term). int16 and
  float32 stacks are supported too; float reflectance in 0..1 works if ``haze_dn`` of
  :func:`composite_bap` is scaled accordingly.
- ``nodata`` (default 0) is both an input and an output convention: an input pixel whose *band 0* equals
  ``nodata`` (or is NaN) is treated as invalid, and output pixels without any valid observation are set to
  ``nodata``. NaN is accepted as ``nodata`` for float stacks.
- Masks are boolean, ``True`` = invalid (cloud, shadow, nodata, optionally snow), on the grid of the bands
  (SCL is 20 m: the caller resamples it with nearest neighbour before masking 10 m bands).
- Periods (:mod:`hrlc.periods`): ``"month"`` gives 12 periods labelled ``"01"``..``"12"``; ``"season"`` gives
  4 calendar quarters (Jan-Mar, Apr-Jun, Jul-Sep, Oct-Dec) labelled ``"season1"``..``"season4"``. Dates
  outside the year get period ``-1`` and are ignored.

Sentinel-2 L2A Scene Classification (SCL) codes
-----------------------------------------------
0 no data, 1 saturated or defective, 2 dark area pixels (renamed "casted shadows" / topographic shadow in
Sen2Cor >= 2.10), 3 cloud shadows, 4 vegetation, 5 not vegetated, 6 water, 7 unclassified, 8 cloud medium
probability, 9 cloud high probability, 10 thin cirrus, 11 snow or ice.
Invalid by default: :data:`SCL_NODATA` + :data:`SCL_SHADOW` + :data:`SCL_CLOUD` (+ :data:`SCL_SNOW` if
``snow=True``). Code 2 (:data:`SCL_DARK`) stays *valid*: it marks dark surfaces and terrain shadow that are
often real land cover (dark water, burnt areas, north-facing slopes); masking it would blank terrain-shaded
slopes for the whole winter. Code 7 (unclassified) stays valid as well.

Landsat Collection 2 QA_PIXEL bits
----------------------------------
bit 0 fill, 1 dilated cloud, 2 cirrus (Landsat 8/9 only), 3 cloud, 4 cloud shadow, 5 snow, 6 clear,
7 water (bits 8-15 are confidence pairs, not used). Invalid by default: fill, dilated cloud, cirrus,
cloud, cloud shadow (+ snow if ``snow=True``). The "clear" bit is not needed: it is defined by USGS as
"neither cloud nor dilated cloud".

Compositing
-----------
- :func:`composite_median`: per pixel, period and band the median of the valid observations; for an even
  count the mean of the two middle values, rounded half up (towards +inf) for integer dtypes. A numba
  kernel, threaded over rows, O(t*b*y*x): invalid values become sentinels and a small SIMD sorting
  network sorts each period's values of a block of columns at once.
- :func:`composite_bap`: per pixel and period the one valid observation with the highest score (all bands
  of the same date, so spectra stay physically consistent), in the spirit of FORCE (Frantz 2017) and
  Griffiths et al. (2013); see the function for the score.
Because only valid observations enter either method, a composite pixel with at least one clear
observation always lies within the range of the clear values (median) or equals one of them (BAP).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
import xarray as xr
from numba import njit
from scipy import ndimage

from hrlc import periods

__all__ = [
    "PERIODS",
    "QA_CIRRUS",
    "QA_CLEAR",
    "QA_CLOUD",
    "QA_CLOUD_SHADOW",
    "QA_DILATED_CLOUD",
    "QA_FILL",
    "QA_SNOW",
    "QA_WATER",
    "SCL_CLOUD",
    "SCL_DARK",
    "SCL_NODATA",
    "SCL_SHADOW",
    "SCL_SNOW",
    "cloud_distance_score",
    "composite",
    "composite_bap",
    "composite_median",
    "period_index",
    "period_labels",
    "period_mid_doy",
    "qa_pixel_mask",
    "scl_mask",
]

# --- Sentinel-2 L2A SCL classes -------------------------------------------------------------------
SCL_NODATA: tuple[int, ...] = (0, 1)  # no data, saturated or defective
SCL_DARK: tuple[int, ...] = (2,)  # dark area pixels / topographic (casted) shadow: kept VALID
SCL_SHADOW: tuple[int, ...] = (3,)  # cloud shadows
SCL_CLOUD: tuple[int, ...] = (8, 9, 10)  # cloud medium probability, high probability, thin cirrus
SCL_SNOW: tuple[int, ...] = (11,)  # snow or ice

# --- Landsat Collection 2 QA_PIXEL bits (bit numbers) ---------------------------------------------
QA_FILL = 0
QA_DILATED_CLOUD = 1
QA_CIRRUS = 2
QA_CLOUD = 3
QA_CLOUD_SHADOW = 4
QA_SNOW = 5
QA_CLEAR = 6
QA_WATER = 7

#: number of periods per year for each period name
PERIODS: dict[str, int] = {kind: len(labels) for kind, labels in periods.KINDS.items()}
_PERIOD_ALIASES = {"month": "month", "monthly": "month", "season": "season", "seasonal": "season"}


# ==================================================================================================
# Masks
# ==================================================================================================
def _disk(radius: int) -> np.ndarray:
    """Disk structuring element: all offsets with dy**2 + dx**2 <= radius**2."""
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius


def _dilate(mask: np.ndarray, dilate_px: int) -> np.ndarray:
    """Dilate a (y, x) or (t, y, x) bool mask by a disk of radius `dilate_px`, each 2-D slice alone."""
    if dilate_px <= 0:
        return mask
    disk = _disk(int(dilate_px))
    if mask.ndim == 2:
        return ndimage.binary_dilation(mask, structure=disk) if mask.any() else mask
    out = np.empty_like(mask)
    for i in range(mask.shape[0]):
        out[i] = ndimage.binary_dilation(mask[i], structure=disk) if mask[i].any() else mask[i]
    return out


def _check_2d_3d(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim not in (2, 3):
        raise ValueError(f"{name} must be (y, x) or (t, y, x), got shape {a.shape}")
    return a


def scl_mask(scl: np.ndarray, *, snow: bool = False, dilate_px: int = 0) -> np.ndarray:
    """Invalid-pixel mask from a Sentinel-2 L2A Scene Classification layer.

    Args:
        scl: SCL codes, ``(y, x)`` or ``(t, y, x)``, any integer dtype.
        snow: also flag snow/ice (code 11) as invalid (not dilated).
        dilate_px: grow cloud (8, 9, 10) and cloud shadow (3) by a disk of this radius in pixels, per 2-D
            slice; nodata codes (0, 1) are never dilated.

    Returns:
        bool array of the same shape, ``True`` = invalid.
    """
    scl = _check_2d_3d(scl, "scl")
    cloud = np.isin(scl, SCL_CLOUD + SCL_SHADOW)
    invalid = _dilate(cloud, dilate_px)
    invalid |= np.isin(scl, SCL_NODATA)
    if snow:
        invalid |= np.isin(scl, SCL_SNOW)
    return invalid


def qa_pixel_mask(qa: np.ndarray, *, snow: bool = False, dilate_px: int = 0) -> np.ndarray:
    """Invalid-pixel mask from a Landsat Collection 2 Level-2 QA_PIXEL band.

    Args:
        qa: QA_PIXEL bit field, ``(y, x)`` or ``(t, y, x)``, uint16 (any integer dtype).
        snow: also flag snow (bit 5) as invalid (not dilated).
        dilate_px: grow dilated cloud, cirrus, cloud and cloud shadow (bits 1-4) by a disk of this radius
            in pixels, per 2-D slice; fill (bit 0) is never dilated.

    Returns:
        bool array of the same shape, ``True`` = invalid.
    """
    qa = _check_2d_3d(qa, "qa").astype(np.int64, copy=False)
    cloud_bits = (1 << QA_DILATED_CLOUD) | (1 << QA_CIRRUS) | (1 << QA_CLOUD) | (1 << QA_CLOUD_SHADOW)
    invalid = _dilate((qa & cloud_bits) != 0, dilate_px)
    invalid |= (qa & (1 << QA_FILL)) != 0
    if snow:
        invalid |= (qa & (1 << QA_SNOW)) != 0
    return invalid


# ==================================================================================================
# Periods
# ==================================================================================================
def _period_name(period: str) -> str:
    try:
        return _PERIOD_ALIASES[period]
    except KeyError:
        raise ValueError(f"period must be 'month' or 'season', got {period!r}") from None


def period_labels(period: str) -> list[str]:
    """Coordinate labels of the periods: ``"01".."12"`` or ``"season1".."season4"``."""
    return list(periods.labels(_period_name(period)))


def _as_datetime64(times: Any) -> np.ndarray:
    t = np.asarray(times)
    if not np.issubdtype(t.dtype, np.datetime64):
        t = t.astype("datetime64[ns]")
    return t


def period_index(times: np.ndarray, year: int, period: str) -> np.ndarray:
    """Period number of each date: month 0..11 or calendar quarter 0..3; -1 outside `year` (or NaT).

    Args:
        times: ``(t,)`` datetime64 (any unit) or anything numpy converts to it (ISO strings, pandas).
        year: the composite year.
        period: ``"month"`` or ``"season"`` (``"monthly"``/``"seasonal"`` accepted).

    Returns:
        int64 ``(t,)``.
    """
    name = _period_name(period)
    t = _as_datetime64(times)
    months = t.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    years = months // 12 + 1970
    month0 = months % 12
    idx = month0 if name == "month" else month0 // 3
    ok = (years == year) & ~np.isnat(t)
    return np.where(ok, idx, -1).astype(np.int64)


def period_mid_doy(year: int, period: str) -> np.ndarray:
    """Day of year (1-based, float64) of the middle of each period of `year`, the default BAP target."""
    name = _period_name(period)
    n = PERIODS[name]
    step = 12 // n
    jan1 = np.datetime64(f"{year}-01-01", "M")
    starts = (jan1 + np.arange(n + 1) * step).astype("datetime64[D]")  # first day of each period + next Jan 1
    days = (starts - starts[0]).astype(np.int64)
    first = days[:-1] + 1.0
    last = days[1:] + 0.0
    return (first + last) / 2.0


def _day_of_year(times: Any) -> np.ndarray:
    t = _as_datetime64(times)
    return (t.astype("datetime64[D]") - t.astype("datetime64[Y]")).astype(np.int64) + 1


def _dates_per_period(period: np.ndarray, n_periods: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n_periods, max_k)`` int32 table of date indices per period (padded with -1) and their counts."""
    period = np.asarray(period, dtype=np.int64)
    n = np.array([(period == p).sum() for p in range(n_periods)], dtype=np.int64)
    table = np.full((n_periods, max(int(n.max(initial=0)), 1)), -1, dtype=np.int32)
    for p in range(n_periods):
        idx = np.flatnonzero(period == p)
        table[p, : idx.size] = idx
    return table, n


# ==================================================================================================
# Median composite
# ==================================================================================================
# How the kernel is fast: per row y and block of `_XB` columns, for each period the <= k
# dates of that period are loaded band by band into a small (k, _XB) buffer that stays in L1 cache;
# invalid observations are replaced by the largest value of the dtype (+inf for floats), the k rows are
# sorted column-wise by a fixed sorting network (Batcher odd-even merge sort pruned to k inputs, optimal
# for k <= 8), whose compare-exchange passes are branchless min/max over contiguous columns and vectorise
# (SIMD), and the median is read at the per-pixel ranks (n-1)//2 and n//2, n = number of valid values.
# Sentinels sort after every valid value (ties with a valid maximum are harmless: equal values), so the
# ranks below n only ever see valid values.
# Threads: the kernel is a plain (nogil) numba function over a range of rows, run on blocks of rows by a
# thread pool of `numba.get_num_threads()` workers (NUMBA_NUM_THREADS). This compiles ~3x faster than a
# `parallel=True` prange kernel, balances load by small row blocks, and is safe to call from any thread
# (dask workers, several processors in one process) without numba threading-layer restrictions.
_XB = 512  # column block: k * _XB values of the scratch buffer stay in L1/L2


def _sorting_network(n: int) -> list[tuple[int, int]]:
    """Compare-exchange pairs (i < j) that sort `n` values: Batcher's odd-even merge sort, pruned to `n`.

    Built for the next power of two; pairs touching an index >= n are dropped, which is exact when the
    missing inputs are +inf (a compare-exchange with a larger-than-all value never moves anything).
    """
    size = 1
    while size < n:
        size *= 2
    pairs: list[tuple[int, int]] = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return [(i, j) for i, j in pairs if j < n]


def _networks(n_dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(n_periods, max_pairs, 2)`` int32 sorting networks per period and their lengths."""
    nets = [_sorting_network(int(n)) for n in n_dates]
    n_net = np.array([len(x) for x in nets], dtype=np.int64)
    table = np.zeros((len(nets), max(int(n_net.max(initial=0)), 1), 2), dtype=np.int32)
    for p, net in enumerate(nets):
        if net:
            table[p, : len(net)] = net
    return table, n_net


@njit(cache=True, nogil=True)
def _median_rows(
    data: np.ndarray,
    invalid: np.ndarray,
    dates: np.ndarray,
    n_dates: np.ndarray,
    net: np.ndarray,
    n_net: np.ndarray,
    nodata: Any,
    big: Any,
    is_int: bool,
    out: np.ndarray,
    count: np.ndarray,
    y0: int,
    y1: int,
) -> None:  # pragma: no cover - compiled
    """Median composite of rows y0..y1-1 into `out` / `count` (see the comment above)."""
    nt, nb, ny, nx = data.shape
    n_periods, max_k = dates.shape
    xb = min(_XB, nx)
    for y in range(y0, y1):
        vals = np.empty((max_k, xb), dtype=data.dtype)
        valid = np.empty((max_k, xb), dtype=np.bool_)
        cnt = np.empty(xb, dtype=np.int32)
        for x0 in range(0, nx, xb):
            w = min(xb, nx - x0)
            for p in range(n_periods):
                nd = n_dates[p]
                # validity of each date of the period (band independent): mask and band-0 nodata/NaN
                cnt[:w] = 0
                for k in range(nd):
                    t = dates[p, k]
                    for i in range(w):
                        v = data[t, 0, y, x0 + i]
                        ok = (not invalid[t, y, x0 + i]) & (v == v) & (v != nodata)
                        valid[k, i] = ok
                        cnt[i] += ok
                for i in range(w):
                    count[p, y, x0 + i] = cnt[i]
                for b in range(nb):
                    if is_int:
                        for k in range(nd):
                            t = dates[p, k]
                            for i in range(w):
                                v = data[t, b, y, x0 + i]
                                vals[k, i] = v if valid[k, i] else big
                    else:  # float: a NaN in this band is skipped for this band only -> per-band count
                        cnt[:w] = 0
                        for k in range(nd):
                            t = dates[p, k]
                            for i in range(w):
                                v = data[t, b, y, x0 + i]
                                ok = valid[k, i] & (v == v)
                                vals[k, i] = v if ok else big
                                cnt[i] += ok
                    for c in range(n_net[p]):
                        r0 = vals[net[p, c, 0]]
                        r1 = vals[net[p, c, 1]]
                        for i in range(w):
                            lo = r0[i]
                            hi = r1[i]
                            r0[i] = min(lo, hi)
                            r1[i] = max(lo, hi)
                    # branchless: for odd n both ranks are the same, and (2v + 1) >> 1 == v, (v + v) / 2 == v
                    for i in range(w):
                        n = cnt[i]
                        lo = vals[max(n - 1, 0) >> 1, i]
                        hi = vals[n >> 1, i]
                        if is_int:
                            # mean of the two middle values, rounded half up (arithmetic shift = floor)
                            med = (np.int64(lo) + np.int64(hi) + 1) >> 1
                            out[p, b, y, x0 + i] = med if n > 0 else nodata
                        else:
                            fmed = (np.float64(lo) + np.float64(hi)) * 0.5
                            out[p, b, y, x0 + i] = fmed if n > 0 else nodata


def _run_rows(kernel: Any, args: tuple[Any, ...], ny: int) -> None:
    """Run ``kernel(*args, y0, y1)`` over all rows, in blocks of rows on `numba.get_num_threads()` threads."""
    threads = max(1, int(numba.get_num_threads()))
    block = max(1, min(16, -(-ny // (8 * threads))))
    starts = range(0, ny, block)
    if threads == 1 or len(starts) == 1:
        kernel(*args, 0, ny)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hrlc-composite") as pool:
        futures = [pool.submit(kernel, *(*args, y0, min(y0 + block, ny))) for y0 in starts]
        for f in futures:
            f.result()


def _check_stack(
    data: np.ndarray, invalid: np.ndarray, period: np.ndarray, n_periods: int, nodata: int | float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    data = np.asarray(data)
    if data.ndim != 4:
        raise ValueError(f"data must be (t, b, y, x), got shape {data.shape}")
    if data.dtype.kind not in "uif" or (data.dtype.kind in "ui" and data.dtype.itemsize > 4):
        raise TypeError(f"data must be a <= 32-bit integer or a float array, got {data.dtype}")
    invalid = np.asarray(invalid)
    t, _, ny, nx = data.shape
    if invalid.shape != (t, ny, nx):
        raise ValueError(f"invalid must be (t, y, x) = {(t, ny, nx)}, got {invalid.shape}")
    period = np.asarray(period, dtype=np.int64)
    if period.shape != (t,):
        raise ValueError(f"period must be (t,) = ({t},), got {period.shape}")
    if n_periods < 1:
        raise ValueError("n_periods must be >= 1")
    if period.size and (period.max() >= n_periods or period.min() < -1):
        raise ValueError(f"period values must lie in -1..{n_periods - 1}")
    if data.dtype.kind in "ui":
        info = np.iinfo(data.dtype)
        if not (np.isfinite(nodata) and float(nodata).is_integer() and info.min <= nodata <= info.max):
            raise ValueError(f"nodata {nodata!r} is not representable in {data.dtype}")
    nodata_typed = data.dtype.type(nodata)
    return (
        np.ascontiguousarray(data),
        np.ascontiguousarray(invalid, dtype=np.bool_),
        period,
        nodata_typed,
    )


def composite_median(
    data: np.ndarray,
    invalid: np.ndarray,
    period: np.ndarray,
    n_periods: int,
    nodata: int | float = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-period, per-band median of the valid observations.

    Args:
        data: ``(t, b, y, x)`` uint16 DN (int16, float32, any <= 32-bit integer and float64 work too).
        invalid: ``(t, y, x)`` bool, ``True`` = invalid (cloud, shadow, ...).
        period: ``(t,)`` int period of each date, ``-1`` = skip the date (see :func:`period_index`).
        n_periods: number of output periods (12 months or 4 seasons).
        nodata: input pixels whose band 0 equals this value (or is NaN) are invalid as well; output value
            where a period has no valid observation.

    Returns:
        ``composite`` ``(n_periods, b, y, x)`` of the dtype of `data`, and ``count`` ``(n_periods, y, x)``
        uint16, the number of valid observations used. For an even count the median is the mean of the
        two middle values, rounded half up for integer dtypes. For float stacks NaN in another band is
        skipped for that band only (like ``np.nanmedian``).
    """
    data, invalid, period, nodata_typed = _check_stack(data, invalid, period, n_periods, nodata)
    t, nb, ny, nx = data.shape
    dates, n_dates = _dates_per_period(period, n_periods)
    net, n_net = _networks(n_dates)
    out = np.empty((n_periods, nb, ny, nx), dtype=data.dtype)
    count = np.empty((n_periods, ny, nx), dtype=np.uint16)
    if out.size == 0 or count.size == 0:
        return out, count
    is_int = data.dtype.kind in "ui"
    big = data.dtype.type(np.iinfo(data.dtype).max if is_int else np.inf)
    args = (data, invalid, dates, n_dates, net, n_net, nodata_typed, big, is_int, out, count)
    _run_rows(_median_rows, args, ny)
    return out, count


# ==================================================================================================
# Best-available-pixel composite
# ==================================================================================================
def composite_bap(
    data: np.ndarray,
    invalid: np.ndarray,
    period: np.ndarray,
    n_periods: int,
    doy: np.ndarray,
    target_doy: np.ndarray,
    *,
    nodata: int | float = 0,
    blue_band: int | None = 0,
    cloud_distance_px: float = 10.0,
    w_doy: float = 1.0,
    w_cloud: float = 1.0,
    w_haze: float = 0.5,
    doy_sigma: float = 15.0,
    haze_dn: float = 2000.0,
    cloud_score: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best-available-pixel composite: per pixel and period the one valid observation with the top score.

    Score of a valid observation (all terms in 0..1, weights as given)::

        w_doy   * exp(-0.5 * ((doy - target_doy[period]) / doy_sigma) ** 2)
      + w_cloud * clip(d / cloud_distance_px, 0, 1)       # linear ramp, not a sigmoid
      + w_haze  * (1 - clip(blue / haze_dn, 0, 1))         # bright blue = haze or thin cloud

    where ``d`` is the Euclidean distance in pixels from the pixel to the nearest pixel flagged in
    `invalid` on the same date (``scipy.ndimage.distance_transform_edt``; a date without any invalid pixel
    gets the full cloud term; a valid pixel next to a cloud has ``d = 1``). Only `invalid` counts as
    "cloud" for the distance: pixels that are invalid only because band 0 equals `nodata` (e.g. outside
    the swath) are skipped but do not penalise their neighbours. Ties go to the earlier date.

    Args:
        data, invalid, period, n_periods, nodata: as in :func:`composite_median`.
        doy: ``(t,)`` day of year of each date.
        target_doy: ``(n_periods,)`` preferred day of year per period (e.g. :func:`period_mid_doy`).
        blue_band: index of the blue band for the haze term, ``None`` to disable it.
        cloud_distance_px: distance at which the cloud term saturates (``<= 0`` disables it: term = 1).
        w_doy, w_cloud, w_haze: weights of the three terms.
        doy_sigma: standard deviation of the Gaussian DOY term, in days.
        haze_dn: blue value at which the haze term reaches 0 (2000 for DN = reflectance x 10 000; use 0.2
            for float reflectance).
        cloud_score: ``(t, y, x)`` float32 cloud term of each observation, as :func:`cloud_distance_score` of
            `invalid` gives it (the default). A caller that composites an image block by block computes it
            on the block grown by ``ceil(cloud_distance_px)`` pixels each side (where the image has them)
            and crops it: the distance to a cloud farther than that saturates, so the blocks then join
            into exactly the composite of the whole image.

    Returns:
        ``composite`` ``(n_periods, b, y, x)`` dtype of `data` (`nodata` where no valid observation),
        ``count`` ``(n_periods, y, x)`` uint16 number of valid observations available, and ``score``
        ``(n_periods, y, x)`` float32 of the chosen observation (0 where none).
    """
    data, invalid, period, nodata_typed = _check_stack(data, invalid, period, n_periods, nodata)
    t, nb, ny, nx = data.shape
    doy = np.asarray(doy, dtype=np.float64)
    target_doy = np.asarray(target_doy, dtype=np.float64)
    if doy.shape != (t,):
        raise ValueError(f"doy must be (t,) = ({t},), got {doy.shape}")
    if target_doy.shape != (n_periods,):
        raise ValueError(f"target_doy must be (n_periods,) = ({n_periods},), got {target_doy.shape}")
    if blue_band is not None and not -nb <= blue_band < nb:
        raise ValueError(f"blue_band {blue_band} out of range for {nb} bands")
    if cloud_score is not None and np.shape(cloud_score) != (t, ny, nx):
        raise ValueError(f"cloud_score must be (t, y, x) = {(t, ny, nx)}, got {np.shape(cloud_score)}")

    out = np.full((n_periods, nb, ny, nx), nodata_typed, dtype=data.dtype)
    count = np.zeros((n_periods, ny, nx), dtype=np.uint16)
    best = np.full((n_periods, ny, nx), -np.inf, dtype=np.float32)
    for i in range(t):
        p = int(period[i])
        if p < 0:
            continue
        b0 = data[i, 0]
        valid = ~invalid[i] & (b0 == b0)
        if not (isinstance(nodata_typed, np.floating) and np.isnan(nodata_typed)):
            valid &= b0 != nodata_typed
        if not valid.any():
            continue
        count[p] += valid
        score = np.zeros((ny, nx), dtype=np.float32)
        if w_doy:
            score += np.float32(w_doy * np.exp(-0.5 * ((doy[i] - target_doy[p]) / doy_sigma) ** 2))
        if w_cloud:
            cloud = (
                cloud_distance_score(invalid[i], cloud_distance_px) if cloud_score is None else cloud_score[i]
            )
            score += np.float32(w_cloud) * cloud
        if w_haze and blue_band is not None:
            blue = data[i, blue_band].astype(np.float32)
            score += np.float32(w_haze) * (1 - np.clip(np.nan_to_num(blue / np.float32(haze_dn)), 0, 1))
        better = valid & (score > best[p])
        best[p][better] = score[better]
        np.copyto(out[p], data[i], where=better[None])
    best[np.isneginf(best)] = 0
    return out, count, best


def cloud_distance_score(invalid: np.ndarray, cloud_distance_px: float = 10.0) -> np.ndarray:
    """The cloud term of the best-available-pixel score: ``clip(d / cloud_distance_px, 0, 1)``, float32.

    ``d`` is the Euclidean distance in pixels to the nearest pixel flagged in `invalid` (``(y, x)`` or
    ``(t, y, x)``, each 2-D slice alone); a slice without any flagged pixel, or ``cloud_distance_px <= 0``,
    scores 1 everywhere. The score of a pixel depends only on `invalid` within ``ceil(cloud_distance_px)``
    pixels of it (beyond, the term is saturated), which is what lets a caller compute it block by block.
    """
    invalid = _check_2d_3d(invalid, "invalid").astype(np.bool_, copy=False)
    if invalid.ndim == 3:
        out = np.empty(invalid.shape, np.float32)
        for i in range(invalid.shape[0]):
            out[i] = cloud_distance_score(invalid[i], cloud_distance_px)
        return out
    if cloud_distance_px <= 0 or not invalid.any():
        return np.ones(invalid.shape, np.float32)
    dist = ndimage.distance_transform_edt(~invalid).astype(np.float32)
    return np.clip(dist / np.float32(cloud_distance_px), 0, 1)


# ==================================================================================================
# xarray front end
# ==================================================================================================
def composite(
    cube: xr.Dataset,
    invalid: xr.DataArray,
    *,
    year: int,
    period: str = "month",
    method: str = "median",
    nodata: int | float = 0,
) -> xr.Dataset:
    """Composite an xarray time series (bands as variables) into monthly or seasonal periods.

    Args:
        cube: Dataset whose data variables are the bands, each with dims ``(time, y, x)`` (any names for the
            two spatial dims, in that order); numpy- or dask-backed (dask is computed here, the whole
            cube must fit in memory: tile upstream).
        invalid: ``(time, y, x)`` bool mask, ``True`` = invalid (see :func:`scl_mask`, :func:`qa_pixel_mask`).
        year: the composite year; dates outside it are ignored.
        period: ``"month"`` (12 periods ``"01".."12"``) or ``"season"`` (``"season1".."season4"``).
        method: ``"median"`` (:func:`composite_median`) or ``"bap"`` (:func:`composite_bap` with default
            weights, target = middle of each period, blue = the variable named ``blue`` or ``B02`` if
            present, else the first variable).
        nodata: see :func:`composite_median`.

    Returns:
        Dataset with the same band variables, dims ``(period, y, x)``, plus ``valid_count`` (uint16) and for
        BAP ``bap_score`` (float32); spatial coords and attrs are kept, ``period`` is a string coordinate.
    """
    name = _period_name(period)
    if method not in ("median", "bap"):
        raise ValueError(f"method must be 'median' or 'bap', got {method!r}")
    bands = [str(v) for v in cube.data_vars]
    if not bands:
        raise ValueError("cube has no data variables")
    first = cube[bands[0]]
    if first.ndim != 3 or first.dims[0] != "time":
        raise ValueError(f"band variables must be (time, y, x), got {first.dims}")
    dims = first.dims
    ydim, xdim = dims[1], dims[2]
    dtypes = [cube[b].dtype for b in bands]
    t, ny, nx = first.shape
    data = np.empty((t, len(bands), ny, nx), dtype=np.result_type(*dtypes))
    for i, b in enumerate(bands):  # one band computed (dask) at a time: peak memory = cube + one band
        data[:, i] = cube[b].transpose(*dims).values
    inv = invalid.transpose(*dims).values if isinstance(invalid, xr.DataArray) else np.asarray(invalid)
    times = cube["time"].values
    n_periods = PERIODS[name]
    pidx = period_index(times, year, name)

    if method == "median":
        comp, count = composite_median(data, inv, pidx, n_periods, nodata=nodata)
        score = None
    else:
        blue = _guess_blue(bands)
        comp, count, score = composite_bap(
            data,
            inv,
            pidx,
            n_periods,
            _day_of_year(times),
            period_mid_doy(year, name),
            nodata=nodata,
            blue_band=blue,
        )
    del data

    coords: dict[str, Any] = {"period": period_labels(name)}
    for cname, c in cube.coords.items():
        if "time" not in c.dims and cname != "time":
            coords[str(cname)] = c
    out_dims = ("period", ydim, xdim)
    variables: dict[str, xr.DataArray] = {}
    for i, b in enumerate(bands):
        values = comp[:, i]
        if values.dtype != dtypes[i]:
            values = values.astype(dtypes[i])
        attrs = dict(cube[b].attrs)
        attrs["nodata"] = nodata
        variables[b] = xr.DataArray(values, dims=out_dims, attrs=attrs)
    variables["valid_count"] = xr.DataArray(
        count, dims=out_dims, attrs={"long_name": "number of valid observations in the period"}
    )
    if score is not None:
        variables["bap_score"] = xr.DataArray(
            score, dims=out_dims, attrs={"long_name": "best-available-pixel score of the chosen observation"}
        )
    attrs = dict(cube.attrs)
    attrs.update({"composite_method": method, "composite_period": name, "composite_year": int(year)})
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def _guess_blue(bands: list[str]) -> int:
    """Index of the variable named ``blue`` or ``B02`` (Sentinel-2), case-insensitive, else 0.

    Landsat band numbers are ambiguous (SR_B1 is blue on Landsat 4-7 but coastal aerosol on 8/9), so
    Landsat cubes should name the band ``blue`` or put it first.
    """
    lower = [str(b).lower() for b in bands]
    for cand in ("blue", "b02"):
        if cand in lower:
            return lower.index(cand)
    return 0
