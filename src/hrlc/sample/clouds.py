"""Clouds, cirrus, cloud shadows and haze of one synthetic acquisition, and how they change the signal.

Why: the optical chain must mask clouds (SCL for Sentinel-2, QA_PIXEL for Landsat) before compositing,
so the synthetic scenes carry realistic clouds: blobs of fractal low-pass noise thresholded to the
scene's cloud fraction, brighter and more opaque inside; optional thin cirrus sheets; shadows that are
the cloud opacity moved by a fixed ground offset (sun in the south-south-east, so shadows fall
north-north-west of their clouds); and a thin unflagged haze fringe round each cloud, as real cloud
masks miss (part of it is labelled "unclassified").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hrlc.sample._noise import smooth_field

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


def cloud_layer(
    gen: np.random.Generator, shape: tuple[int, int], pixel_size: float, cover: float
) -> CloudLayer:
    """Clouds covering the fraction `cover` of a grid of `shape` pixels of `pixel_size` metres."""
    h, w = shape
    cirrus = np.zeros(shape, dtype=bool)
    cirrus_strength = np.zeros(shape, dtype=np.float32)
    has_cirrus = gen.random() < CIRRUS_PROBABILITY
    ci_target = float(gen.uniform(0.03, 0.12))
    strength = float(gen.uniform(0.015, 0.05))
    if has_cirrus:
        ci_field = smooth_field(gen, shape, 3000.0 / pixel_size, octaves=2)
        t_ci = float(np.quantile(ci_field, 1.0 - min(ci_target, cover)))
        cirrus = ci_field > t_ci
        cirrus_strength = np.where(cirrus, strength * np.clip((ci_field - t_ci) / 0.5, 0.3, 1.0), 0.0)
        cirrus_strength = cirrus_strength.astype(np.float32)
    ci_share = float(cirrus.mean())
    q = float(np.clip((cover - ci_share) / max(1.0 - ci_share, 1e-6), 0.0, 1.0))

    field = smooth_field(gen, shape, CLOUD_SCALE_M / pixel_size, octaves=4)
    free = field[~cirrus] if has_cirrus else field.ravel()
    t = float(np.quantile(free, 1.0 - q)) if q > 0 else np.inf
    d = field - t
    alpha = np.where(
        d >= 0,
        np.clip(FLAG_ALPHA + 0.6 * d, FLAG_ALPHA, 1.0),
        HAZE_ALPHA * np.clip((d + 0.2) / 0.2, 0.0, 1.0),
    ).astype(np.float32)
    cloud = d >= 0
    cirrus &= ~cloud
    cirrus_strength[cloud] = 0.0
    dy, dx = shadow_offset_px(pixel_size)
    shadow_alpha = shift(alpha, dy, dx)
    shadow = shift(cloud, dy, dx) & ~cloud
    return CloudLayer(
        alpha=alpha,
        cloud=cloud,
        cirrus=cirrus,
        cirrus_strength=cirrus_strength,
        shadow_alpha=shadow_alpha,
        shadow=shadow,
        offset_px=(dy, dx),
    )


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
