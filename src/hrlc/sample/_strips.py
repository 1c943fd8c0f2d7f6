"""Row strips: how the synthetic repository is computed in bounded memory, and statistics gathered over strips.

Why: a Sentinel-2 tile is 10 980² pixels; a scene of it held whole (10 bands of float32 and their noise) is
~10 GB. Everything per pixel is therefore computed for a strip of rows at a time, `STRIP_PIXELS` pixels at
most, and written before the next strip. What needs the whole grid (a quantile, a rank, a set of labels)
is gathered over the strips first; `quantile` here gives exactly what `np.quantile` gives on the
concatenated values, so a grid computed in several strips equals the grid computed in one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import islice

import numpy as np

STRIP_PIXELS = 1 << 20
"""Pixels of the 10 m grid computed at a time (~150 bytes each while a scene renders: ~150 MB per strip)."""


def strips(height: int, row_pixels: int) -> list[tuple[int, int]]:
    """Row ranges [r0, r1) covering `height` rows, each of at most STRIP_PIXELS / `row_pixels` rows (>= 1).

    `row_pixels` is the number of 10 m pixels one row costs (the grid width, or 3 x width for a 30 m row).
    """
    rows = max(1, STRIP_PIXELS // max(int(row_pixels), 1))
    return [(r, min(r + rows, height)) for r in range(0, height, rows)]


Chunks = Callable[[], Iterable[np.ndarray]]
"""A re-iterable source of value chunks: each call yields the same values again, in pieces."""


def quantile(chunks: Chunks, q: float) -> np.float32:
    """`np.quantile(np.concatenate(list(chunks())), q)` (method "linear") without holding all the values.

    One chunk goes to `np.quantile` itself; more are read three times: a radix selection finds the two
    order statistics around the quantile on float32 keys (65 536-bin histograms), then they are
    interpolated as numpy does for a Python float `q` (in float32). Values are float32, without NaN.
    """
    head = list(islice(iter(chunks()), 2))
    if len(head) < 2:
        return np.float32(np.quantile(head[0], q))
    ((a, b, t),) = _neighbours(chunks, [q])
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def quantiles(chunks: Chunks, qs: Sequence[float]) -> np.ndarray:
    """`np.quantile(np.concatenate(list(chunks())), qs)` for a sequence `qs` (float64, as numpy gives)."""
    head = list(islice(iter(chunks()), 2))
    if len(head) < 2:
        return np.quantile(head[0], qs)
    out = np.empty(len(qs), dtype=np.float64)
    for i, (a, b, t) in enumerate(_neighbours(chunks, qs)):
        diff = np.float64(b - a)
        out[i] = np.float64(b) - diff * (1 - t) if t >= 0.5 else np.float64(a) + diff * t
    return out


def _neighbours(chunks: Chunks, qs: Sequence[float]) -> list[tuple[np.float32, np.float32, float]]:
    """For each quantile: the order statistics below and above it and the weight of the upper one, as
    numpy's "linear" method takes them (an index past the end counts as -1 in the weight)."""
    high = np.zeros(1 << 16, dtype=np.int64)  # histogram of the keys' upper 16 bits
    for c in chunks():
        high += np.bincount(_keys(c) >> 16, minlength=1 << 16)
    count = int(high.sum())
    virtual = (count - 1) * np.asarray(qs, dtype=np.float64)
    below = np.floor(virtual)
    lo = np.minimum(below, count - 1).astype(np.int64).tolist()
    hi = np.minimum(below + 1, count - 1).astype(np.int64).tolist()
    gamma = (virtual - np.where(virtual >= count - 1, -1.0, below)).tolist()
    stats = _order_statistics(chunks, np.cumsum(high), sorted({*lo, *hi}))
    return [(stats[k0], stats[k1], t) for k0, k1, t in zip(lo, hi, gamma, strict=True)]


def _keys(values: np.ndarray) -> np.ndarray:
    """Order-preserving uint32 keys of float32 values (-0.0 and 0.0 share one key, as they compare equal)."""
    bits = (np.asarray(values, dtype=np.float32).ravel() + np.float32(0.0)).view(np.uint32)
    negative = (bits.view(np.int32) >> 31).view(np.uint32)  # all ones for a negative value
    return bits ^ (negative | np.uint32(0x80000000))


def _value(key: int) -> np.float32:
    bits = key ^ 0x80000000 if key >= 0x80000000 else ~key & 0xFFFFFFFF
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


def _order_statistics(chunks: Chunks, cum_high: np.ndarray, ranks: list[int]) -> dict[int, np.float32]:
    """The values of the given 0-based ranks in the sorted concatenation of the chunks, given the cumulative
    histogram of the keys' upper 16 bits: one more pass counts the lower 16 bits inside the bins needed."""
    bins = {k: int(np.searchsorted(cum_high, k, side="right")) for k in ranks}
    low = {b: np.zeros(1 << 16, dtype=np.int64) for b in bins.values()}
    for c in chunks():
        keys = _keys(c)
        top = keys >> 16
        for b, hist in low.items():
            hist += np.bincount(keys[top == b] & 0xFFFF, minlength=1 << 16)
    out = {}
    for k, b in bins.items():
        within = k - (int(cum_high[b - 1]) if b else 0)
        lo = int(np.searchsorted(np.cumsum(low[b]), within, side="right"))
        out[k] = _value((b << 16) | lo)
    return out
