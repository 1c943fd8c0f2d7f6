"""Seeded smooth random fields for the synthetic repository (landscape, clouds, haze, snow patchiness).

Everything random in `hrlc.sample` derives from `rng(seed, *tags)`: a generator keyed by the seed and by
integer tags naming the stream (what is drawn, for which sensor, year and date). Streams therefore do not
depend on the order in which scenes are generated, and two runs with the same seed give the same bytes.
A `Field` takes its random numbers when it is made and is evaluated by rows later, so a grid computed strip
by strip draws the numbers a grid computed whole draws.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from hrlc.sample._kernels import bilinear_kernel

# Stream tags: one per kind of random draw.
TAG_LANDSCAPE = 1
TAG_FIELDS = 2
TAG_PIXEL = 3
TAG_CROPS = 4
TAG_SNOW = 5
TAG_SCENE = 6
TAG_CLOUDS = 7
TAG_POINTS = 8
TAG_POLYGONS = 9
TAG_BOUNDARY = 10


def rng(seed: int, *tags: int) -> np.random.Generator:
    """A generator for the stream named by `tags` under `seed` (independent of any other stream)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *(int(t) for t in tags)])


FIELD_PIXELS = 1 << 24
"""A smooth field of up to this many pixels (64 MB of float32) is computed whole; a larger one by rows."""


class Field:
    """A seeded smooth field, drawn now and evaluated by rows later: `Field(...).rows(0, h)` is `smooth_field`.

    Zero-mean, unit-variance float32 noise with features of about `scale` pixels (fractal if octaves > 1).
    Each octave k is white noise on a grid coarser by `scale / 2**k`, interpolated with a cubic spline. For
    speed the octaves are summed on a grid `step` times coarser than `shape` (by default the largest power
    of two not above a quarter of the finest octave) and then interpolated bilinearly.

    The random numbers are drawn from `gen` in the constructor, so fields drawn one after the other take
    the same numbers however their rows are evaluated later. The octave sum of a field of at most
    FIELD_PIXELS pixels is computed whole on first use and kept; a larger one is computed for the rows
    asked, normalised with statistics gathered over row chunks (then values may differ from a whole-grid
    evaluation in the last bits).
    """

    def __init__(
        self,
        gen: np.random.Generator,
        shape: tuple[int, int],
        scale: float,
        *,
        octaves: int = 1,
        persistence: float = 0.5,
        step: int | None = None,
    ) -> None:
        h, w = self.shape = (int(shape[0]), int(shape[1]))
        self._last: tuple[tuple[int, int], np.ndarray] | None = None
        if step is None:
            finest = scale / 2 ** (octaves - 1)
            step = 1
            while step * 2 <= finest / 4:
                step *= 2
        self._coarse: Field | None = None
        if step > 1:
            self._coarse = Field(
                gen,
                (math.ceil(h / step), math.ceil(w / step)),
                scale / step,
                octaves=octaves,
                persistence=persistence,
                step=1,
            )
            ch, cw = self._coarse.shape
            self._constant = None
            if ch < 2 or cw < 2:
                self._constant = self._coarse.rows(0, ch).mean(dtype=np.float32)
            self._r0, self._rw = _linear_weights(h, ch, step)
            self._c0, self._cw = _linear_weights(w, cw, step)
            return
        # (scale, amplitude, white noise of the whole grid or the coarse grid of the spline)
        self._octaves: list[tuple[float, float, np.ndarray]] = []
        for k in range(octaves):
            s = scale / 2**k
            if s < 1.5:
                self._octaves.append((s, persistence**k, gen.standard_normal(shape, dtype=np.float32)))
                continue
            ch, cw = math.ceil(h / s) + 4, math.ceil(w / s) + 4
            self._octaves.append((s, persistence**k, gen.standard_normal((ch, cw), dtype=np.float32)))
        self._whole: np.ndarray | None = None
        self._norm: tuple[np.float64, float] | None = None
        self._filtered: list[np.ndarray] | None = None

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows [r0, r1) of the field: float32 (r1 - r0, width), a new array."""
        h = self.shape[0]
        r0, r1 = max(int(r0), 0), min(int(r1), h)
        if self._last is None or self._last[0] != (r0, r1):  # the same rows are often asked again
            self._last = ((r0, r1), self._rows(r0, r1))
        return self._last[1].copy()

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        h, w = self.shape
        if self._coarse is not None:
            if self._constant is not None:
                return np.full((r1 - r0, w), self._constant, dtype=np.float32)
            i0, wr = self._r0[r0:r1], self._rw[r0:r1]
            first = int(i0[0]) if i0.size else 0
            block = self._coarse.rows(first, int(i0[-1]) + 2 if i0.size else first)
            return _upsample_rows(block, i0 - first, wr, self._c0, self._cw)
        if h * w <= FIELD_PIXELS:
            if self._whole is None:
                self._whole = self._octave_sum(0, h)
                self._whole -= self._whole.mean(dtype=np.float64)
                std = float(self._whole.std(dtype=np.float64))
                if std > 0:
                    self._whole /= std
            return self._whole[r0:r1]
        mean, std = self._statistics()
        out = self._octave_sum(r0, r1)
        out -= mean
        if std > 0:
            out /= std
        return out

    def _octave_sum(self, r0: int, r1: int) -> np.ndarray:
        h, w = self.shape
        out = np.zeros((r1 - r0, w), dtype=np.float32)
        whole = (r0, r1) == (0, h)
        if not whole and self._filtered is None:  # spline coefficients once, as ndimage computes them
            self._filtered = [
                ndimage.spline_filter(np.pad(c, 12, mode="edge"), 3, output=np.float64, mode="nearest")
                if s >= 1.5
                else c
                for s, _, c in self._octaves
            ]
        for k, (s, amp, noise) in enumerate(self._octaves):
            if s < 1.5:
                out += amp * noise[r0:r1]
                continue
            # output pixel (i, j) samples the spline at coarse coordinates (1.5 + i / s, 1.5 + j / s)
            if whole:
                up = ndimage.affine_transform(
                    noise, [1.0 / s, 1.0 / s], offset=1.5, output_shape=(h, w), order=3, mode="nearest"
                )
            else:  # the same spline, from its coefficients padded as ndimage pads them (12 each side)
                assert self._filtered is not None
                up = ndimage.affine_transform(
                    self._filtered[k],
                    [1.0 / s, 1.0 / s],
                    offset=[12 + 1.5 + r0 / s, 12 + 1.5],
                    output_shape=(r1 - r0, w),
                    output=np.float32,
                    order=3,
                    mode="nearest",
                    prefilter=False,
                )
            out += amp * up
        return out

    def _statistics(self) -> tuple[np.float64, float]:
        """Mean and standard deviation of the octave sum, gathered over row chunks (large fields only)."""
        if self._norm is None:
            h, w = self.shape
            rows = max(1, FIELD_PIXELS // 4 // w)
            chunks = [(a, min(a + rows, h)) for a in range(0, h, rows)]
            total = sum(float(self._octave_sum(a, b).sum(dtype=np.float64)) for a, b in chunks)
            mean = np.float64(total / (h * w))
            s1 = s2 = 0.0
            for a, b in chunks:
                c = self._octave_sum(a, b)
                c -= mean
                d = c.astype(np.float64)
                s1 += float(d.sum())
                s2 += float(np.dot(d.ravel(), d.ravel()))
            var = s2 / (h * w) - (s1 / (h * w)) ** 2
            self._norm = (mean, math.sqrt(max(var, 0.0)))
        return self._norm


def smooth_field(
    gen: np.random.Generator,
    shape: tuple[int, int],
    scale: float,
    *,
    octaves: int = 1,
    persistence: float = 0.5,
    step: int | None = None,
) -> np.ndarray:
    """The whole of `Field(gen, shape, scale, ...)`: zero-mean, unit-variance float32 smooth noise."""
    return Field(gen, shape, scale, octaves=octaves, persistence=persistence, step=step).rows(0, shape[0])


def _linear_weights(n_out: int, n_in: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    pos = (np.arange(n_out, dtype=np.float32) + 0.5) / step - 0.5
    pos = np.clip(pos, 0.0, n_in - 1.0)
    i0 = np.minimum(np.floor(pos).astype(np.int64), max(n_in - 2, 0))
    return i0, (pos - i0).astype(np.float32)


def _upsample_rows(
    coarse: np.ndarray, r0: np.ndarray, rw: np.ndarray, c0: np.ndarray, cwt: np.ndarray
) -> np.ndarray:
    """Output rows blending coarse rows r0 and r0 + 1 by rw, after columns c0 and c0 + 1 by cwt."""
    out = np.empty((r0.size, c0.size), dtype=np.float32)
    bilinear_kernel(np.ascontiguousarray(coarse, dtype=np.float32), r0, rw, c0, cwt, out)
    return out


def rank01(values: np.ndarray) -> np.ndarray:
    """The empirical CDF of each value in `values` (float32 in [0, 1)): thresholds become area fractions.

    Ties rank in the order of the pixels (as a stable sort). Computed in place of `values` (float32, C
    order, fewer than 2**32 pixels), with one uint64 key per pixel: the value's order-preserving bits above,
    the pixel index below, sorted in place.
    """
    flat = values.reshape(-1)
    count = flat.size
    keys = np.empty(count, dtype=np.uint64)
    for a in range(0, count, 1 << 22):
        b = min(a + (1 << 22), count)
        bits = (flat[a:b] + np.float32(0.0)).view(np.uint32)  # -0.0 ranks with 0.0, as they compare equal
        order = np.where(bits >> 31 != 0, ~bits, bits | np.uint32(0x80000000)).astype(np.uint64)
        keys[a:b] = (order << np.uint64(32)) | np.arange(a, b, dtype=np.uint64)
    keys.sort()
    for a in range(0, count, 1 << 22):
        b = min(a + (1 << 22), count)
        pixels = (keys[a:b] & np.uint64(0xFFFFFFFF)).astype(np.int64)
        flat[pixels] = np.arange(a, b, dtype=np.int64).astype(np.float32) / count
    return values
