"""Seeded smooth random fields for the synthetic repository (landscape, clouds, haze, snow patchiness).

Everything random in `hrlc.sample` derives from `rng(seed, *tags)`: a generator keyed by the seed and by
integer tags naming the stream (what is drawn, for which sensor, year and date). Streams therefore do not
depend on the order in which scenes are generated, and two runs with the same seed give the same bytes.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

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


def smooth_field(
    gen: np.random.Generator,
    shape: tuple[int, int],
    scale: float,
    *,
    octaves: int = 1,
    persistence: float = 0.5,
    step: int | None = None,
) -> np.ndarray:
    """Zero-mean, unit-variance float32 noise with features of about `scale` pixels (fractal if octaves > 1).

    Each octave k is white noise on a grid coarser by `scale / 2**k`, interpolated with a cubic spline. For
    speed the octaves are summed on a grid `step` times coarser than `shape` (by default the largest power
    of two not above a quarter of the finest octave) and then interpolated bilinearly.
    """
    h, w = shape
    if step is None:
        finest = scale / 2 ** (octaves - 1)
        step = 1
        while step * 2 <= finest / 4:
            step *= 2
    if step > 1:
        coarse = smooth_field(
            gen,
            (math.ceil(h / step), math.ceil(w / step)),
            scale / step,
            octaves=octaves,
            persistence=persistence,
            step=1,
        )
        return upsample_linear(coarse, step, shape)
    out = np.zeros(shape, dtype=np.float32)
    for k in range(octaves):
        s = scale / 2**k
        amp = persistence**k
        if s < 1.5:
            out += amp * gen.standard_normal(shape, dtype=np.float32)
            continue
        ch, cw = math.ceil(h / s) + 4, math.ceil(w / s) + 4
        coarse = gen.standard_normal((ch, cw), dtype=np.float32)
        # Output pixel (i, j) samples the spline at coarse coordinates (1.5 + i / s, 1.5 + j / s).
        up = ndimage.affine_transform(
            coarse, [1.0 / s, 1.0 / s], offset=1.5, output_shape=shape, order=3, mode="nearest"
        )
        out += amp * up
    out -= out.mean(dtype=np.float64)
    std = float(out.std(dtype=np.float64))
    if std > 0:
        out /= std
    return out


def _linear_weights(n_out: int, n_in: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    pos = (np.arange(n_out, dtype=np.float32) + 0.5) / step - 0.5
    pos = np.clip(pos, 0.0, n_in - 1.0)
    i0 = np.minimum(np.floor(pos).astype(np.int64), max(n_in - 2, 0))
    return i0, (pos - i0).astype(np.float32)


def upsample_linear(coarse: np.ndarray, step: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of `coarse` by an integer `step` (pixel-centre aligned), cropped to `shape`."""
    h, w = shape
    ch, cw = coarse.shape
    if ch < 2 or cw < 2:
        return np.broadcast_to(coarse.mean(dtype=np.float32), shape).astype(np.float32)
    r0, rw = _linear_weights(h, ch, step)
    c0, cwt = _linear_weights(w, cw, step)
    cols = np.ascontiguousarray(coarse[:, c0] * (1.0 - cwt) + coarse[:, c0 + 1] * cwt)  # (ch, w)
    out = cols[r0]  # (h, w), C order
    out *= (1.0 - rw)[:, None]
    tmp = cols[r0 + 1]
    tmp *= rw[:, None]
    out += tmp
    return out


def rank01(values: np.ndarray) -> np.ndarray:
    """The empirical CDF of each value in `values` (float32 in [0, 1)): thresholds become area fractions."""
    flat = values.ravel()
    order = np.argsort(flat, kind="stable")
    ranks = np.empty(flat.size, dtype=np.float32)
    ranks[order] = np.arange(flat.size, dtype=np.float32) / flat.size
    return ranks.reshape(values.shape)
