"""Clouds, cirrus, cloud shadows and haze of one synthetic acquisition, and how they change the signal.

Why: the optical chain must mask clouds (SCL for Sentinel-2, QA_PIXEL for Landsat) before compositing,
so the synthetic scenes carry realistic clouds: blobs of fractal low-pass noise thresholded to the
scene's cloud fraction, brighter and more opaque inside; optional thin cirrus sheets; shadows that are
the cloud opacity moved by a fixed ground offset (sun in the south-south-east, so shadows fall
north-north-west of their clouds); and a thin unflagged haze fringe round each cloud, as real cloud
masks miss (part of it is labelled "unclassified").

A `Clouds` is drawn whole (its random numbers, its thresholds) and rendered for any rows; the cloud
fractions are exact over the whole grid, whatever the strips.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hrlc.sample._noise import Field
from hrlc.sample._strips import quantile, strips

SHADOW_OFFSET_M: tuple[float, float] = (-210.0, -80.0)
"""(row, column) ground offset of a cloud's shadow from the cloud, in metres of the grid (north-up)."""

FLAG_ALPHA = 0.3  # opacity at the edge of flagged clouds
THICK_ALPHA = 0.7  # opacity above which a cloud is "high probability" (SCL 9)
HAZE_ALPHA = 0.1  # maximum opacity of the unflagged haze fringe
UNCLASSIFIED_ALPHA = 0.05  # haze above this opacity is labelled unclassified (SCL 7)
CLOUD_SCALE_M = 1800.0  # size of the largest cloud features
CIRRUS_PROBABILITY = 0.35  # share of acquisitions with a cirrus sheet


@dataclass(frozen=True)
class CloudLayer:
    """Clouds of one acquisition on a grid (all arrays (h, w))."""

    alpha: np.ndarray  # float32 cloud opacity in [0, 1] (haze fringe included)
    cloud: np.ndarray  # bool flagged cloud (alpha >= FLAG_ALPHA)
    cirrus: np.ndarray  # bool flagged thin cirrus
    cirrus_strength: np.ndarray  # float32 additive reflectance of the cirrus sheet (0 outside)
    shadow_alpha: np.ndarray  # float32 opacity of the cloud casting a shadow on the pixel
    shadow: np.ndarray  # bool flagged cloud shadow (shadow of a flagged cloud, outside clouds)
    offset_px: tuple[int, int]  # (rows, cols) shift from cloud to shadow

    @property
    def thick(self) -> np.ndarray:
        return self.alpha >= THICK_ALPHA

    @property
    def haze(self) -> np.ndarray:
        return ~self.cloud & (self.alpha >= UNCLASSIFIED_ALPHA)

    @property
    def cover(self) -> float:
        """Fraction of pixels flagged cloudy (cloud or cirrus)."""
        return float((self.cloud | self.cirrus).mean())


def shadow_offset_px(pixel_size: float) -> tuple[int, int]:
    """The shadow offset in pixels of a grid of `pixel_size` metres."""
    return (round(SHADOW_OFFSET_M[0] / pixel_size), round(SHADOW_OFFSET_M[1] / pixel_size))


def shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`a` moved by (dy, dx) pixels: out[r + dy, c + dx] = a[r, c]; uncovered pixels are 0 / False."""
    h, w = a.shape
    out = np.zeros_like(a)
    src_y, dst_y = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
    src_x, dst_x = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
    out[dst_y, dst_x] = a[src_y, src_x]
    return out


class Clouds:
    """The clouds covering the fraction `cover` of a grid of `shape` pixels of `pixel_size` metres.

    Drawn in the constructor (its passes over row strips set the cirrus and cloud thresholds, which are
    quantiles of the whole grid); `rows(r0, r1)` renders any rows.
    """

    def __init__(
        self, gen: np.random.Generator, shape: tuple[int, int], pixel_size: float, cover: float
    ) -> None:
        h, w = self.shape = shape
        parts = strips(h, w)
        self.offset_px = shadow_offset_px(pixel_size)
        self._has_cirrus = gen.random() < CIRRUS_PROBABILITY
        ci_target = float(gen.uniform(0.03, 0.12))
        self._strength = float(gen.uniform(0.015, 0.05))
        ci_count = 0
        if self._has_cirrus:
            self._ci_field = Field(gen, shape, 3000.0 / pixel_size, octaves=2)
            self._t_ci = float(
                quantile(lambda: (self._ci_field.rows(a, b) for a, b in parts), 1.0 - min(ci_target, cover))
            )
            ci_count = sum(int(np.count_nonzero(self._ci_field.rows(a, b) > self._t_ci)) for a, b in parts)
        ci_share = ci_count / (h * w)
        q = float(np.clip((cover - ci_share) / max(1.0 - ci_share, 1e-6), 0.0, 1.0))

        self._field = Field(gen, shape, CLOUD_SCALE_M / pixel_size, octaves=4)

        def free() -> Iterator[np.ndarray]:
            for a, b in parts:
                field = self._field.rows(a, b)
                yield field[self._ci_field.rows(a, b) <= self._t_ci] if self._has_cirrus else field.ravel()

        self._t = float(quantile(free, 1.0 - q)) if q > 0 else np.inf

    def _cirrus(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        """(flagged cirrus before clouds are removed from it, its additive reflectance) of rows [r0, r1)."""
        shape = (r1 - r0, self.shape[1])
        if not self._has_cirrus:
            return np.zeros(shape, dtype=bool), np.zeros(shape, dtype=np.float32)
        ci_field = self._ci_field.rows(r0, r1)
        cirrus = ci_field > self._t_ci
        strength = np.where(cirrus, self._strength * np.clip((ci_field - self._t_ci) / 0.5, 0.3, 1.0), 0.0)
        return cirrus, strength.astype(np.float32)

    def _opacity(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        """(cloud opacity with its haze fringe, flagged cloud) of rows [r0, r1)."""
        d = self._field.rows(r0, r1) - self._t
        alpha = np.where(
            d >= 0,
            np.clip(FLAG_ALPHA + 0.6 * d, FLAG_ALPHA, 1.0),
            HAZE_ALPHA * np.clip((d + 0.2) / 0.2, 0.0, 1.0),
        ).astype(np.float32)
        return alpha, d >= 0

    def cloud(self, r0: int, r1: int) -> np.ndarray:
        """Flagged cloud of rows [r0, r1) (clipped to the grid)."""
        return self._opacity(max(r0, 0), min(r1, self.shape[0]))[1]

    def rows(self, r0: int, r1: int) -> CloudLayer:
        """The cloud layer of rows [r0, r1); shadows come from the clouds `offset_px` rows away."""
        h = self.shape[0]
        dy, dx = self.offset_px
        a0, a1 = max(min(r0, r0 - dy), 0), min(max(r1, r1 - dy), h)  # the clouds that shade these rows
        alpha_ext, cloud_ext = self._opacity(a0, a1)
        alpha, cloud = alpha_ext[r0 - a0 : r1 - a0], cloud_ext[r0 - a0 : r1 - a0]
        cirrus, cirrus_strength = self._cirrus(r0, r1)
        cirrus &= ~cloud
        cirrus_strength[cloud] = 0.0
        return CloudLayer(
            alpha=alpha,
            cloud=cloud,
            cirrus=cirrus,
            cirrus_strength=cirrus_strength,
            shadow_alpha=_moved_rows(alpha_ext, a0, r0, r1, h, dy, dx),
            shadow=_moved_rows(cloud_ext, a0, r0, r1, h, dy, dx) & ~cloud,
            offset_px=(dy, dx),
        )


def _moved_rows(ext: np.ndarray, e0: int, r0: int, r1: int, h: int, dy: int, dx: int) -> np.ndarray:
    """Rows [r0, r1) of `shift(a, dy, dx)` of a grid `a` of `h` rows, given its rows e0... in `ext`."""
    out = np.zeros((r1 - r0, ext.shape[1]), dtype=ext.dtype)
    s0, s1 = max(r0 - dy, 0), min(r1 - dy, h)  # source rows
    if s1 > s0:
        out[s0 + dy - r0 : s1 + dy - r0] = shift(ext[s0 - e0 : s1 - e0], 0, dx)
    return out


def cloud_layer(
    gen: np.random.Generator, shape: tuple[int, int], pixel_size: float, cover: float
) -> CloudLayer:
    """Clouds covering the fraction `cover` of a grid of `shape` pixels of `pixel_size` metres (whole)."""
    return Clouds(gen, shape, pixel_size, cover).rows(0, shape[0])


def apply_clouds(
    refl: np.ndarray,
    layer: CloudLayer,
    cloud_spectrum: np.ndarray,
    shadow_transmission: np.ndarray,
    cirrus_spectrum: np.ndarray,
    tmp: np.ndarray | None = None,
) -> None:
    """Turn surface reflectance `refl` (bands, pixels) into observed reflectance, in place.

    Shadows scale the surface by `1 - a_s (1 - shadow_transmission)`; cirrus adds
    `strength * cirrus_spectrum`; clouds blend towards `cloud_spectrum * (0.55 + 0.45 a)` with opacity `a`.
    `tmp` is a work row (pixels). (The numpy reference of `_kernels.observe_kernel`'s second half.)
    """
    a = layer.alpha.ravel()
    a_s = layer.shadow_alpha.ravel()
    cirrus = layer.cirrus_strength.ravel() if layer.cirrus.any() else None
    bright = 0.55 + 0.45 * a
    row = np.empty_like(a) if tmp is None else tmp
    for b in range(refl.shape[0]):
        r = refl[b]
        np.multiply(a_s, -(1.0 - shadow_transmission[b]), out=row)
        row += 1.0
        r *= row
        if cirrus is not None:
            np.multiply(cirrus, cirrus_spectrum[b], out=row)
            r += row
        np.multiply(bright, cloud_spectrum[b], out=row)
        row -= r
        row *= a
        r += row
