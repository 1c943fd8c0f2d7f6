"""Terrain features from a digital elevation model: slope (and the pixel sizes it needs).

Pure numpy. Conventions: elevation in metres, float, NaN = no data; a grid's rows run north to south (the
usual north-up GeoTIFF, negative y resolution); slope in degrees from the horizontal, 0..90.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pixel_size_m", "slope_degrees"]

_M_PER_DEG_LAT = 111_132.954  # WGS 84 mean length of one degree of latitude, metres
_M_PER_DEG_LON_EQ = 111_319.491  # one degree of longitude at the equator, metres


def pixel_size_m(
    res_x: float, res_y: float, *, geographic: bool = False, lat: np.ndarray | None = None
) -> tuple[np.ndarray | float, float]:
    """(dx, dy) in metres of a grid's pixels. Projected grids (metres): the absolute resolutions. Geographic
    grids (degrees): dy from the mean degree of latitude, dx per row from the row's latitude `lat` (degrees,
    one value per row; returned as a column so it broadcasts over ``(y, x)``)."""
    if not geographic:
        return abs(float(res_x)), abs(float(res_y))
    if lat is None:
        raise ValueError("a geographic grid needs the latitude of its rows")
    dx = abs(float(res_x)) * _M_PER_DEG_LON_EQ * np.cos(np.radians(np.asarray(lat, dtype=np.float64)))
    return dx.reshape(-1, 1), abs(float(res_y)) * _M_PER_DEG_LAT


def _pad_linear(z: np.ndarray) -> np.ndarray:
    """Pad one pixel on every side by linear extrapolation (exact for a plane; a single row/column is
    repeated, i.e. no slope across it)."""
    p = np.pad(z, 1, mode="edge")
    if z.shape[0] >= 2:
        p[0, :] = 2 * p[1, :] - p[2, :]
        p[-1, :] = 2 * p[-2, :] - p[-3, :]
    if z.shape[1] >= 2:
        p[:, 0] = 2 * p[:, 1] - p[:, 2]
        p[:, -1] = 2 * p[:, -2] - p[:, -3]
    return p


def slope_degrees(z: np.ndarray, dx: float | np.ndarray, dy: float) -> np.ndarray:
    """Slope in degrees of a north-up elevation grid `z` (metres) with pixel sizes `dx`, `dy` (metres; `dx`
    may be a column of per-row sizes). Horn's (1981) 3x3 finite differences, as `gdaldem slope`; the border
    pixels use a linearly extrapolated neighbourhood, so a plane has the same slope everywhere. A pixel that is NaN
    or has a NaN neighbour is NaN. float32."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"elevation must be 2-D, got shape {z.shape}")
    p = _pad_linear(z)
    a, b, c = p[:-2, :-2], p[:-2, 1:-1], p[:-2, 2:]
    d, f = p[1:-1, :-2], p[1:-1, 2:]
    g, h, i = p[2:, :-2], p[2:, 1:-1], p[2:, 2:]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8.0 * np.asarray(dx, dtype=np.float64))
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8.0 * float(dy))
    out = np.degrees(np.arctan(np.hypot(dzdx, dzdy))).astype(np.float32)
    out[np.isnan(z)] = np.nan  # Horn's kernel skips the centre pixel: no elevation, no slope
    return out
