"""Fused per-pixel kernels (numba) of the scene rendering: the hot loops of `surface` and `sensors`.

Why: a 1024 px repository renders ~120 scenes of 10^6 pixels x 10 bands; chained numpy passes cost
~0.2 s per scene, one fused loop a quarter of that. The kernels are deterministic (no random draws
inside; noise comes in as arrays), compiled once and cached next to this module (`cache=True`), and
single-threaded on purpose: the COG writer threads use the other core, and numba's parallel launch
costs milliseconds per call on a busy 2-core machine. They release the GIL (`nogil=True`).
The numpy reference of each kernel is its docstring; `surface.SurfaceModel` and `sensors` document
the model.
"""

from __future__ import annotations

import numpy as np
from numba import njit

GREEN, SOIL, ROCK, WATER, TURBID, SNOW = 0, 3, 4, 5, 6, 7  # Endmember indices (see phenology.Endmember)
DAYS = 365


@njit(cache=True, nogil=True)
def surface_kernel(
    table: np.ndarray,  # (K, U*365) float32 fractions of unit u on day d at column u*365 + d-1
    base: np.ndarray,  # (N,) int32 unit * 365
    shift: np.ndarray,  # (N,) int16 phenology delay (days)
    doy0: int,  # day of year - 1
    vigor: np.ndarray,  # (N,) float32
    soil: np.ndarray,  # (N,) float32
    turbidity: np.ndarray,  # (N,) float32
    snow: np.ndarray,  # (N,) float32 visible snow fraction, or (0,) for none
    em: np.ndarray,  # (K, B) float32 endmember reflectance of the output bands
    bright: np.ndarray,  # (N,) float32
    offset: np.ndarray,  # (B_all, N) float32
    bands: np.ndarray,  # (B,) int64 rows of `offset` for the output bands
    out: np.ndarray,  # (B, N) float32
) -> None:
    """out[b, i] = bright[i] * sum_k f[k, i] em[k, b] + offset[bands[b], i], with f the modulated fractions
    of the ten endmembers (K = 10, see phenology.Endmember).

    Modulation: green *= vigor (<= 0.98), the other fractions rescaled to sum to 1; soil and rock *= soil;
    a `turbidity` share of clear water becomes turbid; then a snow fraction s replaces (1 - s) of the rest.
    """
    n = base.shape[0]
    b_count = em.shape[1]
    has_snow = snow.shape[0] == n
    one = np.float32(1.0)
    for i in range(n):
        d = (doy0 - np.int64(shift[i])) % DAYS
        col = np.int64(base[i]) + d
        g = table[GREEN, col]
        g2 = min(g * vigor[i], np.float32(0.98))
        a = (one - g2) / max(one - g, np.float32(1e-6))
        s = snow[i] if has_snow else np.float32(0.0)
        keep = (one - s) * bright[i]
        sb = s * bright[i]
        moved = table[WATER, col] * a * turbidity[i]
        f0 = g2
        f1 = table[1, col] * a
        f2 = table[2, col] * a
        f3 = table[3, col] * a * soil[i]
        f4 = table[4, col] * a * soil[i]
        f5 = table[5, col] * a - moved
        f6 = table[6, col] * a + moved
        f7 = table[7, col] * a
        f8 = table[8, col] * a
        f9 = table[9, col] * a
        for b in range(b_count):
            acc = (
                f0 * em[0, b] + f1 * em[1, b] + f2 * em[2, b] + f3 * em[3, b] + f4 * em[4, b]
                + f5 * em[5, b] + f6 * em[6, b] + f7 * em[7, b] + f8 * em[8, b] + f9 * em[9, b]
            )  # fmt: skip
            out[b, i] = acc * keep + sb * em[SNOW, b] + offset[bands[b], i]


@njit(cache=True, nogil=True)
def mix_kernel(out: np.ndarray, p: np.ndarray, q: np.ndarray, w: np.ndarray) -> None:
    """out[:, p] = (1 - w) out[:, p] + w out[:, q], all reads before any write (mixed edge pixels)."""
    b_count = out.shape[0]
    m = p.shape[0]
    tmp = np.empty((b_count, m), dtype=out.dtype)
    for j in range(m):
        for b in range(b_count):
            tmp[b, j] = (np.float32(1.0) - w[j]) * out[b, p[j]] + w[j] * out[b, q[j]]
    for j in range(m):
        for b in range(b_count):
            out[b, p[j]] = tmp[b, j]


@njit(cache=True, nogil=True)
def observe_kernel(
    refl: np.ndarray,  # (B, N) float32 clear-sky surface reflectance (modified: becomes the observation)
    bank: np.ndarray,  # (B, M) float32 standard normal noise
    shifts: np.ndarray,  # (B,) int64 offset into the noise bank
    start: int,  # flat index in the grid of the first pixel of `refl` (a strip of rows)
    gain: np.ndarray,  # (B,) float32 calibration residual
    haze: np.ndarray,  # (N,) float32 aerosol residual
    haze_spec: np.ndarray,  # (B,) float32
    alpha: np.ndarray,  # (N,) float32 cloud opacity
    shadow_alpha: np.ndarray,  # (N,) float32 opacity of the cloud shading the pixel
    shadow_t: np.ndarray,  # (B,) float32 light left in full shadow
    cirrus: np.ndarray,  # (N,) float32 cirrus reflectance (0 outside)
    cirrus_spec: np.ndarray,  # (B,) float32
    cloud_spec: np.ndarray,  # (B,) float32
    dn_gain: float,
    dn_bias: float,
    idx: np.ndarray,  # (4,) int64 rows of green, red, nir, swir in refl
    dn: np.ndarray,  # (B, N) uint16 output digital numbers
    surface_class: np.ndarray,  # (N,) uint8 output: 11 snow, 6 water, 4 vegetation, 5 other (clear sky)
) -> None:
    """Atmosphere residuals, noise, surface class, then shadow, cirrus, cloud, and encoding to uint16.

    r = r * gain + (0.003 + 0.03 |r|) * noise + haze * haze_spec        (surface seen through the atmosphere)
    noise of pixel i (grid index start + i) in band b: bank[b, (start + i + shifts[b]) mod M]
    r *= 1 - a_s (1 - shadow_t); r += cirrus * cirrus_spec; r += a (cloud_spec (0.55 + 0.45 a) - r)
    dn = clip(round(r * dn_gain + dn_bias), 1, 65535)
    """
    b_count, n = refl.shape
    m = bank.shape[1]
    for b in range(b_count):  # atmosphere and noise, band by band (vectorisable)
        row = refl[b]
        noise = bank[b]
        j = (start + shifts[b]) % m
        gb = gain[b]
        hb = haze_spec[b]
        for i in range(n):
            if j >= m:
                j -= m
            r = row[i]
            row[i] = r * gb + (np.float32(0.003) + np.float32(0.03) * abs(r)) * noise[j] + haze[i] * hb
            j += 1
    g_row, r_row, n_row, s_row = refl[idx[0]], refl[idx[1]], refl[idx[2]], refl[idx[3]]
    for i in range(n):  # clear-sky surface class
        vg, vr, vn, vs = g_row[i], r_row[i], n_row[i], s_row[i]
        ndvi = (vn - vr) / max(vn + vr, np.float32(1e-6))
        ndsi = (vg - vs) / max(vg + vs, np.float32(1e-6))
        ndwi = (vg - vn) / max(vg + vn, np.float32(1e-6))
        c = 4 if ndvi > 0.4 else 5
        if ndwi > 0.05 and vn < 0.1:
            c = 6
        if ndsi > 0.4 and vg > 0.2:
            c = 11
        surface_class[i] = c
    lo, hi = np.float32(1.0), np.float32(65535.0)
    for b in range(b_count):  # shadows, cirrus, clouds, encoding
        row = refl[b]
        out = dn[b]
        dark = np.float32(1.0) - shadow_t[b]
        cs, cc = cirrus_spec[b], cloud_spec[b]
        g32, b32 = np.float32(dn_gain), np.float32(dn_bias + 0.5)
        for i in range(n):
            a = alpha[i]
            r = row[i] * (np.float32(1.0) - shadow_alpha[i] * dark) + cirrus[i] * cs
            r += a * (cc * (np.float32(0.55) + np.float32(0.45) * a) - r)
            out[i] = np.uint16(min(max(r * g32 + b32, lo), hi))


@njit(cache=True, nogil=True)
def bilinear_kernel(
    coarse: np.ndarray,  # (CH, CW) float32
    r0: np.ndarray,  # (H,) int64 upper coarse row of each output row
    rw: np.ndarray,  # (H,) float32 weight of the lower coarse row
    c0: np.ndarray,  # (W,) int64 left coarse column of each output column
    cw: np.ndarray,  # (W,) float32 weight of the right coarse column
    out: np.ndarray,  # (H, W) float32
) -> None:
    """out[i, j] = top * (1 - rw[i]) + bottom * rw[i], top and bottom the coarse rows r0[i] and r0[i] + 1
    blended across columns c0[j], c0[j] + 1 by cw[j]: the float32 operations, in the order, of
    `cols = coarse[:, c0] * (1 - cw) + coarse[:, c0 + 1] * cw; out = cols[r0] * (1 - rw) + cols[r0 + 1] * rw`.
    """
    h, w = out.shape
    one = np.float32(1.0)
    for i in range(h):
        a = r0[i]
        wb = rw[i]
        wt = one - wb
        for j in range(w):
            k = c0[j]
            wr = cw[j]
            wl = one - wr
            top = coarse[a, k] * wl + coarse[a, k + 1] * wr
            bottom = coarse[a + 1, k] * wl + coarse[a + 1, k + 1] * wr
            out[i, j] = top * wt + bottom * wb
