"""The synthetic landscape: the truth class map and the surface units behind it.

Why: every other part of the synthetic repository (scenes, training samples, truth COG) derives from one
seeded landscape, so a classifier can be scored against a known answer.

The scene is a pre-alpine valley (think of the Sava valley in Slovenia): a mountain corner in the
north-east with conifers, alpine grassland and scrub, bare rock and a small permanent snowfield; wooded
hills; a plain of strip fields (1-10 ha; crops, mown meadows, a few abandoned or wooded parcels) cut by
grassy farm tracks; a river with gravel bars, floodplain wetland and oxbow ponds that dry out in summer;
a lake with a seasonal shore and a reed marsh; a town of built-up blocks with parks, hamlets and roads.
Macro features scale with the grid (so a 128 px test grid still holds every class); fields, blocks and
widths are in metres at 10 m pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from hrlc.sample._noise import TAG_BOUNDARY, TAG_CROPS, TAG_FIELDS, TAG_LANDSCAPE, rank01, rng, smooth_field
from hrlc.sample.phenology import CROP_SHARES, CROPS, UNIT_CLASS, Unit

CROP = 255
"""Placeholder unit of cropland fields in `Landscape.unit`: the crop type is drawn per field and year."""


@dataclass(frozen=True)
class Landscape:
    """A seeded landscape on a size x size grid of 10 m pixels (arrays read-only)."""

    codes: np.ndarray  # uint8 HRLC class codes
    unit: np.ndarray  # uint8 Unit, CROP for cropland fields
    field: np.ndarray  # int32 parcel id (0 outside the field system); crop fields, meadows, ...
    elevation: np.ndarray  # float32 rank of elevation in [0, 1) (snow line, phenology delay)
    seed: int

    @property
    def size(self) -> int:
        return int(self.codes.shape[0])

    def units(self, year: int) -> np.ndarray:
        """Surface units of `year`: cropland fields get a crop type drawn per field and year (rotation)."""
        return _units_of_year(self, year)


def class_map(size: int, seed: int) -> np.ndarray:
    """The truth class map (uint8 HRLC codes, no nodata) of the landscape of `seed` on a size x size grid."""
    return landscape(size, seed).codes.copy()


@lru_cache(maxsize=4)
def landscape(size: int, seed: int) -> Landscape:
    """Build (or fetch from a small cache) the landscape of `seed` on a size x size grid of 10 m pixels."""
    if size < 64:
        raise ValueError("size must be at least 64 pixels")
    unit, field, elev = _build(size, seed)
    lut = np.zeros(256, dtype=np.uint8)
    for u, code in UNIT_CLASS.items():
        lut[u] = code
    lut[CROP] = 80
    codes = lut[unit]
    for a in (codes, unit, field, elev):
        a.setflags(write=False)
    return Landscape(codes=codes, unit=unit, field=field, elevation=elev, seed=seed)


def _units_of_year(ls: Landscape, year: int) -> np.ndarray:
    unit = ls.unit.copy()
    crop = unit == CROP
    n_fields = int(ls.field.max()) + 1
    gen = rng(ls.seed, TAG_CROPS, year)
    types = gen.choice(np.array([int(c) for c in CROPS], dtype=np.uint8), size=n_fields, p=CROP_SHARES)
    unit[crop] = types[ls.field[crop]]
    return unit


def _build(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = rng(seed, TAG_LANDSCAPE)
    shape = (n, n)
    rows, cols = np.mgrid[0:n, 0:n].astype(np.float32)
    u, v = cols / n, rows / n

    # Elevation rises towards the north-east corner; its rank makes thresholds area fractions.
    ramp = (u + (1.0 - v)) / 2.0
    elev_raw = 2.4 * ramp + 0.3 * smooth_field(g, shape, max(n / 4, 24.0), octaves=4)
    er = rank01(elev_raw)

    unit = np.full(shape, CROP, dtype=np.uint8)
    field = np.zeros(shape, dtype=np.int32)

    # --- field system everywhere first; natural areas overwrite it -------------------------------------
    fid, track, parcel_unit = _field_system(rng(seed, TAG_FIELDS), n, rows, cols)
    field[:] = fid
    unit[:] = parcel_unit[fid]
    unit[track] = Unit.GRASS

    # --- natural vegetation of the lowland and hills -------------------------------------------------------
    lowland = er <= 0.86
    forest_noise = smooth_field(g, shape, max(n / 7, 18.0), octaves=3) + 3.0 * (er - 0.5)
    q_forest, q_shrub = np.quantile(forest_noise[lowland], [0.70, 0.63])
    shrub_noise = smooth_field(g, shape, max(n / 20, 8.0), octaves=2)
    kind_noise = smooth_field(g, shape, max(n / 10, 12.0), octaves=2)
    forest = lowland & (forest_noise > q_forest)
    needle = forest & ((er + 0.12 * kind_noise > 0.66) | (kind_noise > 1.4))
    unit[forest] = Unit.BROADLEAF
    unit[needle] = Unit.NEEDLELEAF
    shrub = lowland & ~forest & (forest_noise > q_shrub) & (shrub_noise > 0.3)
    unit[shrub] = Unit.SHRUB
    hill_grass = lowland & ~forest & ~shrub & (er > 0.74)
    unit[hill_grass] = Unit.GRASS

    # --- mountain corner -----------------------------------------------------------------------------------
    alpine_noise = smooth_field(g, shape, max(n / 25, 6.0), octaves=2)
    mountain = ~lowland
    unit[mountain & (er <= 0.91)] = Unit.NEEDLELEAF
    belt = mountain & (er > 0.91) & (er <= 0.955)
    unit[belt] = np.where(alpine_noise[belt] > 0.35, Unit.SHRUB, Unit.GRASS)
    unit[mountain & (er > 0.955)] = Unit.ROCK
    unit[er > 0.99] = Unit.GLACIER

    # --- river with gravel bars, floodplain, oxbow ponds ----------------------------------------------------
    phase = g.uniform(0, 2 * math.pi)
    x = np.arange(n, dtype=np.float32)
    wiggle = smooth_field(g, (1, n), max(n / 6, 12.0))[0]
    yc = n * (0.76 + 0.07 * np.sin(2 * math.pi * 1.2 * x / n + phase)) + 0.03 * n * wiggle
    slope = np.gradient(yc)
    half_w = np.clip(2.7 + 0.6 * smooth_field(g, (1, n), max(n / 8, 10.0))[0], 1.8, 4.0)
    dist = np.abs(rows - yc[None, :]) / np.sqrt(1 + slope[None, :] ** 2)
    hw = half_w[None, :]
    low = er < 0.8
    flood_w = max(12.0, 0.045 * n)
    flood_noise = smooth_field(g, shape, max(n / 30, 6.0), octaves=2)
    floodplain = low & (dist <= flood_w)
    unit[floodplain & (flood_noise > 0.4)] = Unit.BROADLEAF  # riparian forest
    unit[floodplain & (flood_noise < -0.6)] = Unit.WETLAND
    bar_noise = smooth_field(g, (1, n), max(n / 25, 6.0))[0][None, :]
    unit[(dist > hw) & (dist <= hw + 2.5) & (bar_noise > 0.9)] = Unit.GRAVEL
    n_ox = 2 if n >= 256 else 1
    for k in range(n_ox):
        cx = float(g.uniform(0.15, 0.85) * n) if n_ox > 1 else 0.3 * n
        if k == 1 and abs(cx - 0.3 * n) < 0.2 * n:
            cx = (cx + 0.45 * n) % (0.8 * n) + 0.1 * n
        side = 1 if g.random() < 0.5 else -1
        ci = int(np.clip(cx, 0, n - 1))
        a = max(6.0, 0.028 * n)
        cy = yc[ci] + side * (half_w[ci] + 0.7 * a + 4.0)
        ang = math.atan(slope[ci])
        _ellipse_feature(unit, rows, cols, cx, cy, a, 0.45 * a, ang, Unit.SEASONAL_WATER, Unit.WETLAND, 2.5)
    unit[dist <= hw] = Unit.WATER

    # --- lake: permanent water, seasonal shore, reed marsh at one end ---------------------------------------
    lx, ly = n * (0.22 + g.uniform(-0.05, 0.05)), n * (0.4 + g.uniform(-0.05, 0.05))
    ang = g.uniform(0, math.pi)
    rx, ry = 0.09 * n, 0.06 * n
    dx, dy = cols - lx, rows - ly
    xr = dx * math.cos(ang) + dy * math.sin(ang)
    yr = -dx * math.sin(ang) + dy * math.cos(ang)
    r = np.sqrt((xr / rx) ** 2 + (yr / ry) ** 2) + 0.12 * smooth_field(g, shape, max(n / 12, 8.0), octaves=2)
    ring = max(2.5 / ry, 0.12)
    marsh_dir = g.uniform(-math.pi, math.pi)
    theta = np.arctan2(yr, xr)
    in_sector = np.cos(theta - marsh_dir) > 0.35
    unit[(r > 1 + ring) & (r <= 1.55 + ring) & in_sector] = Unit.WETLAND
    unit[(r > 1) & (r <= 1 + ring)] = Unit.SEASONAL_WATER
    unit[r <= 1] = Unit.WATER

    # --- town, hamlets, roads -------------------------------------------------------------------------------
    tcx = n * (0.58 + g.uniform(-0.06, 0.06))
    tci = int(np.clip(tcx, 0, n - 1))
    tr = 0.12 * n
    tcy = yc[tci] - half_w[tci] - 0.9 * tr
    town_r = np.hypot(cols - tcx, rows - tcy) / tr + 0.18 * smooth_field(
        g, shape, max(n / 15, 8.0), octaves=2
    )
    _blocks(
        unit, g, rows, cols, town_r <= 1.0, block=(8, 14), p_built=0.86, green=(Unit.GRASS, Unit.BROADLEAF)
    )
    n_hamlets = 3 if n >= 384 else 1
    ag = (unit == CROP) | (unit == Unit.MEADOW)
    for _ in range(n_hamlets):
        ys, xs = np.nonzero(ag[:: max(1, n // 64), :: max(1, n // 64)])
        if ys.size == 0:
            break
        i = g.integers(ys.size)
        hy, hx = ys[i] * max(1, n // 64), xs[i] * max(1, n // 64)
        hr = max(5.0, 0.03 * n)
        hmask = np.hypot(cols - hx, rows - hy) / hr + 0.25 * smooth_field(g, shape, max(n / 30, 6.0)) <= 1.0
        _blocks(unit, g, rows, cols, hmask, block=(4, 7), p_built=0.6, green=(Unit.MEADOW, Unit.MEADOW))
    for end in ((0.0, tcy + g.uniform(-0.2, 0.2) * n), (tcx + g.uniform(-0.3, 0.3) * n, float(n))):
        road = _segment_distance(cols, rows, (tcx, tcy), end) <= 1.0
        unit[road & (unit != Unit.WATER) & (unit != Unit.SEASONAL_WATER)] = Unit.BUILT

    # Only parcels of the field system keep their id (crops and meadows): other pixels get 0.
    field[(unit != CROP) & (unit != Unit.MEADOW)] = 0
    return unit, field, er


def _field_system(
    g: np.random.Generator, n: int, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strip parcels in a few districts of different orientation: (parcel id, track mask, unit per parcel)."""
    n_districts = 3 if n >= 256 else 2
    seeds = g.uniform(0, n, size=(n_districts, 2))
    angles = g.uniform(-0.5, 0.5, size=n_districts)
    jitter = 0.15 * n * smooth_field(g, (n, n), max(n / 6, 12.0))
    d2 = np.stack([np.hypot(cols - sx, rows - sy) for sx, sy in seeds]) + jitter[None]
    district = np.argmin(d2, axis=0)
    key = np.zeros((n, n), dtype=np.int64)
    track = np.zeros((n, n), dtype=bool)
    for d in range(n_districts):
        m = district == d
        c, s = math.cos(angles[d]), math.sin(angles[d])
        xp = cols[m] * c + rows[m] * s
        yp = -cols[m] * s + rows[m] * c
        lo, hi = float(xp.min()) - 25.0, float(xp.max()) + 1.0
        widths = g.uniform(8.0, 22.0, size=int((hi - lo) / 8.0) + 2)
        bounds = lo + np.cumsum(widths)
        strip = np.searchsorted(bounds, xp)
        length = g.uniform(15.0, 45.0, size=bounds.size + 1)[strip]
        offset = g.uniform(0.0, 45.0, size=bounds.size + 1)[strip]
        row = np.floor((yp - offset) / length).astype(np.int64)
        key[m] = (d * 100_000 + strip) * 100_000 + row + 50_000
        has_track = g.random(bounds.size + 1) < 0.35
        left = np.concatenate([[lo - 25.0], bounds])[strip]
        track[m] = has_track[strip] & (xp - left < 1.0)
    _, inverse = np.unique(key, return_inverse=True)
    fid = inverse.reshape(n, n).astype(np.int32) + 1
    n_parcels = int(fid.max()) + 1
    choice = g.random(n_parcels)
    parcel_unit = np.full(n_parcels, CROP, dtype=np.uint8)
    parcel_unit[choice > 0.74] = Unit.MEADOW
    parcel_unit[choice > 0.93] = Unit.SHRUB
    parcel_unit[choice > 0.96] = Unit.BROADLEAF
    parcel_unit[choice > 0.985] = Unit.NEEDLELEAF
    return fid, track, parcel_unit


def _ellipse_feature(
    unit: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    cx: float,
    cy: float,
    a: float,
    b: float,
    ang: float,
    inner: Unit,
    rim: Unit,
    rim_px: float,
) -> None:
    dx, dy = cols - cx, rows - cy
    xr = dx * math.cos(ang) + dy * math.sin(ang)
    yr = -dx * math.sin(ang) + dy * math.cos(ang)
    unit[(xr / (a + rim_px)) ** 2 + (yr / (b + rim_px)) ** 2 <= 1] = rim
    unit[(xr / a) ** 2 + (yr / b) ** 2 <= 1] = inner


def _blocks(
    unit: np.ndarray,
    g: np.random.Generator,
    rows: np.ndarray,
    cols: np.ndarray,
    mask: np.ndarray,
    *,
    block: tuple[int, int],
    p_built: float,
    green: tuple[Unit, Unit],
) -> None:
    """Fill `mask` with a street grid of built-up blocks and some green blocks (parks, gardens)."""
    if not mask.any():
        return
    ang = g.uniform(-0.6, 0.6)
    size = g.integers(block[0], block[1] + 1)
    xp = cols * math.cos(ang) + rows * math.sin(ang)
    yp = -cols * math.sin(ang) + rows * math.cos(ang)
    bx = np.floor(xp / size).astype(np.int64)
    by = np.floor(yp / size).astype(np.int64)
    keys = (bx - bx.min()) * 10_000 + (by - by.min())
    _, inv = np.unique(keys[mask], return_inverse=True)
    draw = g.random(int(inv.max()) + 1)
    street = ((xp % size) < 1.5) | ((yp % size) < 1.5)
    kind = np.where(draw < p_built, Unit.BUILT, np.where(draw < p_built + (1 - p_built) * 0.65, *green))
    sub = kind[inv].astype(np.uint8)
    sub[street[mask]] = Unit.BUILT
    water = (unit[mask] == Unit.WATER) | (unit[mask] == Unit.SEASONAL_WATER)
    sub[water] = unit[mask][water]
    unit[mask] = sub


def _segment_distance(
    cols: np.ndarray, rows: np.ndarray, p0: tuple[float, float], p1: tuple[float, float]
) -> np.ndarray:
    (x0, y0), (x1, y1) = p0, p1
    vx, vy = x1 - x0, y1 - y0
    t = np.clip(((cols - x0) * vx + (rows - y0) * vy) / max(vx * vx + vy * vy, 1e-9), 0.0, 1.0)
    return np.hypot(cols - (x0 + t * vx), rows - (y0 + t * vy))


def boundary_pairs(patch: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixed pixels at patch edges: (pixel flat index, neighbour flat index, neighbour weight 0.05-0.45).

    A pixel whose 4-neighbour belongs to another patch sees a share of that neighbour (sensor PSF, sub-pixel
    boundaries). `patch` labels homogeneous patches (e.g. unit * 2**20 + field id).
    """
    h, w = patch.shape
    gen = rng(seed, TAG_BOUNDARY)
    idx = np.arange(h * w, dtype=np.int64).reshape(h, w)
    cand_p: list[np.ndarray] = []
    cand_q: list[np.ndarray] = []
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        ys = slice(max(0, -dy), h - max(0, dy))
        xs = slice(max(0, -dx), w - max(0, dx))
        yq = slice(max(0, dy), h - max(0, -dy))
        xq = slice(max(0, dx), w - max(0, -dx))
        diff = patch[ys, xs] != patch[yq, xq]
        cand_p.append(idx[ys, xs][diff])
        cand_q.append(idx[yq, xq][diff])
    p = np.concatenate(cand_p)
    q = np.concatenate(cand_q)
    order = gen.permutation(p.size)
    p, q = p[order], q[order]
    p, first = np.unique(p, return_index=True)
    q = q[first]
    weight = gen.uniform(0.05, 0.45, size=p.size).astype(np.float32)
    return p, q, weight


def erode_classes(codes: np.ndarray, radius: int) -> np.ndarray:
    """True where the (2 radius + 1)^2 window around a pixel holds one class (`radius` px from any edge)."""
    size = 2 * radius + 1
    return (ndimage.maximum_filter(codes, size=size, mode="nearest") == codes) & (
        ndimage.minimum_filter(codes, size=size, mode="nearest") == codes
    )
