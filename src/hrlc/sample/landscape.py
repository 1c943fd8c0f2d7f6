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
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from scipy import ndimage

from hrlc.sample._noise import (
    TAG_BOUNDARY,
    TAG_CROPS,
    TAG_FIELDS,
    TAG_LANDSCAPE,
    Field,
    rank01,
    rng,
    smooth_field,
)
from hrlc.sample._strips import quantiles, strips
from hrlc.sample.phenology import CROP_SHARES, CROPS, UNIT_CLASS, Unit

CROP = 255
"""Placeholder unit of cropland fields in `Landscape.unit`: the crop type is drawn per field and year."""


@dataclass(frozen=True)
class Landscape:
    """A seeded landscape on a size x size grid of 10 m pixels (arrays read-only; 10 bytes a pixel)."""

    codes: np.ndarray  # uint8 HRLC class codes
    unit: np.ndarray  # uint8 Unit, CROP for cropland fields
    field: np.ndarray  # int32 parcel id (0 outside the field system); crop fields, meadows, ...
    elevation: np.ndarray  # float32 rank of elevation in [0, 1) (snow line, phenology delay)
    seed: int

    @property
    def size(self) -> int:
        return int(self.codes.shape[0])

    @cached_property
    def n_fields(self) -> int:
        """Parcel ids run from 1 to n_fields - 1 (0: outside the field system)."""
        return int(self.field.max()) + 1

    def crop_types(self, year: int) -> np.ndarray:
        """The crop type (Unit, uint8) of every field id in `year`: drawn per field and year (rotation)."""
        gen = rng(self.seed, TAG_CROPS, year)
        crops = np.array([int(c) for c in CROPS], dtype=np.uint8)
        return gen.choice(crops, size=self.n_fields, p=CROP_SHARES)

    def units(
        self, year: int, r0: int = 0, r1: int | None = None, crops: np.ndarray | None = None
    ) -> np.ndarray:
        """Surface units of rows [r0, r1) in `year`: cropland fields get their crop type of the year.

        `crops` is `crop_types(year)`, if the caller already has it.
        """
        crops = self.crop_types(year) if crops is None else crops
        unit = self.unit[r0:r1].copy()
        crop = unit == CROP
        unit[crop] = crops[self.field[r0:r1][crop]]
        return unit


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


def _grid(r0: int, r1: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates (float32, (r1 - r0, n)) of rows [r0, r1)."""
    rows, cols = np.mgrid[r0:r1, 0:n].astype(np.float32)
    return rows, cols


def _build(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit, field, elevation rank) of the landscape, computed by row strips.

    The whole-grid arrays are the three returned; everything else is computed for a strip of rows at a
    time. A step that needs the whole grid (the elevation rank, the forest quantile, the parcel and block
    labels) gathers it over the strips first; random numbers are drawn in one fixed order, so the result
    does not depend on the strip height.
    """
    g = rng(seed, TAG_LANDSCAPE)
    shape = (n, n)
    parts = strips(n, n)

    # Elevation rises towards the north-east corner; its rank makes thresholds area fractions.
    elev_noise = Field(g, shape, max(n / 4, 24.0), octaves=4)
    er = np.empty(shape, dtype=np.float32)
    for r0, r1 in parts:
        rows, cols = _grid(r0, r1, n)
        u, v = cols / n, rows / n
        ramp = (u + (1.0 - v)) / 2.0
        er[r0:r1] = 2.4 * ramp + 0.3 * elev_noise.rows(r0, r1)
    rank01(er)

    # --- field system everywhere first; natural areas overwrite it -------------------------------------
    unit, field = _field_system(rng(seed, TAG_FIELDS), n, parts)

    # --- natural vegetation of the lowland and hills -------------------------------------------------------
    forest_field = Field(g, shape, max(n / 7, 18.0), octaves=3)

    def forest_noise(r0: int, r1: int) -> np.ndarray:
        return forest_field.rows(r0, r1) + 3.0 * (er[r0:r1] - 0.5)

    q_forest, q_shrub = quantiles(
        lambda: (forest_noise(r0, r1)[er[r0:r1] <= 0.86] for r0, r1 in parts), [0.70, 0.63]
    )
    shrub_field = Field(g, shape, max(n / 20, 8.0), octaves=2)
    kind_field = Field(g, shape, max(n / 10, 12.0), octaves=2)
    alpine_field = Field(g, shape, max(n / 25, 6.0), octaves=2)

    # --- river with gravel bars, floodplain, oxbow ponds (drawn here, drawn on the grid below) --------------
    phase = g.uniform(0, 2 * math.pi)
    x = np.arange(n, dtype=np.float32)
    wiggle = smooth_field(g, (1, n), max(n / 6, 12.0))[0]
    yc = n * (0.76 + 0.07 * np.sin(2 * math.pi * 1.2 * x / n + phase)) + 0.03 * n * wiggle
    slope = np.gradient(yc)
    half_w = np.clip(2.7 + 0.6 * smooth_field(g, (1, n), max(n / 8, 10.0))[0], 1.8, 4.0)
    hw = half_w[None, :]
    flood_w = max(12.0, 0.045 * n)
    flood_field = Field(g, shape, max(n / 30, 6.0), octaves=2)
    bar_noise = smooth_field(g, (1, n), max(n / 25, 6.0))[0][None, :]
    n_ox = 2 if n >= 256 else 1
    oxbows = []
    for k in range(n_ox):
        cx = float(g.uniform(0.15, 0.85) * n) if n_ox > 1 else 0.3 * n
        if k == 1 and abs(cx - 0.3 * n) < 0.2 * n:
            cx = (cx + 0.45 * n) % (0.8 * n) + 0.1 * n
        side = 1 if g.random() < 0.5 else -1
        ci = int(np.clip(cx, 0, n - 1))
        a = max(6.0, 0.028 * n)
        cy = yc[ci] + side * (half_w[ci] + 0.7 * a + 4.0)
        oxbows.append((cx, cy, a, 0.45 * a, math.atan(slope[ci])))

    # --- lake: permanent water, seasonal shore, reed marsh at one end ---------------------------------------
    lx, ly = n * (0.22 + g.uniform(-0.05, 0.05)), n * (0.4 + g.uniform(-0.05, 0.05))
    lake_ang = g.uniform(0, math.pi)
    rx, ry = 0.09 * n, 0.06 * n
    shore_field = Field(g, shape, max(n / 12, 8.0), octaves=2)
    ring = max(2.5 / ry, 0.12)
    marsh_dir = g.uniform(-math.pi, math.pi)

    # --- town, hamlets, roads (drawn) ------------------------------------------------------------------------
    tcx = n * (0.58 + g.uniform(-0.06, 0.06))
    tci = int(np.clip(tcx, 0, n - 1))
    tr = 0.12 * n
    tcy = yc[tci] - half_w[tci] - 0.9 * tr
    town_field = Field(g, shape, max(n / 15, 8.0), octaves=2)

    def natural(r0: int, r1: int) -> None:
        """Forests, shrub, grass, mountains, river, oxbows and lake on rows [r0, r1) of `unit`."""
        rows, cols = _grid(r0, r1, n)
        out = unit[r0:r1]
        e = er[r0:r1]
        lowland = e <= 0.86
        fnoise = forest_noise(r0, r1)
        shrub_noise = shrub_field.rows(r0, r1)
        kind_noise = kind_field.rows(r0, r1)
        forest = lowland & (fnoise > q_forest)
        needle = forest & ((e + 0.12 * kind_noise > 0.66) | (kind_noise > 1.4))
        out[forest] = Unit.BROADLEAF
        out[needle] = Unit.NEEDLELEAF
        shrub = lowland & ~forest & (fnoise > q_shrub) & (shrub_noise > 0.3)
        out[shrub] = Unit.SHRUB
        hill_grass = lowland & ~forest & ~shrub & (e > 0.74)
        out[hill_grass] = Unit.GRASS

        alpine_noise = alpine_field.rows(r0, r1)
        mountain = ~lowland
        out[mountain & (e <= 0.91)] = Unit.NEEDLELEAF
        belt = mountain & (e > 0.91) & (e <= 0.955)
        out[belt] = np.where(alpine_noise[belt] > 0.35, Unit.SHRUB, Unit.GRASS)
        out[mountain & (e > 0.955)] = Unit.ROCK
        out[e > 0.99] = Unit.GLACIER

        dist = np.abs(rows - yc[None, :]) / np.sqrt(1 + slope[None, :] ** 2)
        low = e < 0.8
        flood_noise = flood_field.rows(r0, r1)
        floodplain = low & (dist <= flood_w)
        out[floodplain & (flood_noise > 0.4)] = Unit.BROADLEAF  # riparian forest
        out[floodplain & (flood_noise < -0.6)] = Unit.WETLAND
        out[(dist > hw) & (dist <= hw + 2.5) & (bar_noise > 0.9)] = Unit.GRAVEL
        for cx, cy, a, b, ang in oxbows:
            _ellipse_feature(out, rows, cols, cx, cy, a, b, ang, Unit.SEASONAL_WATER, Unit.WETLAND, 2.5)
        out[dist <= hw] = Unit.WATER

        dx, dy = cols - lx, rows - ly
        xr = dx * math.cos(lake_ang) + dy * math.sin(lake_ang)
        yr = -dx * math.sin(lake_ang) + dy * math.cos(lake_ang)
        r = np.sqrt((xr / rx) ** 2 + (yr / ry) ** 2) + 0.12 * shore_field.rows(r0, r1)
        theta = np.arctan2(yr, xr)
        in_sector = np.cos(theta - marsh_dir) > 0.35
        out[(r > 1 + ring) & (r <= 1.55 + ring) & in_sector] = Unit.WETLAND
        out[(r > 1) & (r <= 1 + ring)] = Unit.SEASONAL_WATER
        out[r <= 1] = Unit.WATER

    for r0, r1 in parts:
        natural(r0, r1)

    def town(r0: int, r1: int) -> np.ndarray:
        rows, cols = _grid(r0, r1, n)
        return np.hypot(cols - tcx, rows - tcy) / tr + 0.18 * town_field.rows(r0, r1) <= 1.0

    _blocks(unit, g, parts, town, block=(8, 14), p_built=0.86, green=(Unit.GRASS, Unit.BROADLEAF))
    n_hamlets = 3 if n >= 384 else 1
    k = max(1, n // 64)
    coarse_units = unit[::k, ::k]
    ag = (coarse_units == CROP) | (coarse_units == Unit.MEADOW)
    hr = max(5.0, 0.03 * n)
    for _ in range(n_hamlets):
        ys, xs = np.nonzero(ag)
        if ys.size == 0:
            break
        i = g.integers(ys.size)
        hy, hx = ys[i] * k, xs[i] * k
        hamlet_field = Field(g, shape, max(n / 30, 6.0))

        def hamlet(
            r0: int, r1: int, hy: np.int64 = hy, hx: np.int64 = hx, hamlet_field: Field = hamlet_field
        ) -> np.ndarray:
            rows, cols = _grid(r0, r1, n)
            return np.hypot(cols - hx, rows - hy) / hr + 0.25 * hamlet_field.rows(r0, r1) <= 1.0

        _blocks(unit, g, parts, hamlet, block=(4, 7), p_built=0.6, green=(Unit.MEADOW, Unit.MEADOW))
    ends = ((0.0, tcy + g.uniform(-0.2, 0.2) * n), (tcx + g.uniform(-0.3, 0.3) * n, float(n)))
    for r0, r1 in parts:
        rows, cols = _grid(r0, r1, n)
        out = unit[r0:r1]
        for end in ends:
            road = _segment_distance(cols, rows, (tcx, tcy), end) <= 1.0
            out[road & (out != Unit.WATER) & (out != Unit.SEASONAL_WATER)] = Unit.BUILT
        # Only parcels of the field system keep their id (crops and meadows): other pixels get 0.
        field[r0:r1][(out != CROP) & (out != Unit.MEADOW)] = 0
    return unit, field, er


def _field_system(
    g: np.random.Generator, n: int, parts: list[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Strip parcels in a few districts of different orientation: (unit, parcel id) of the whole grid.

    Parcels get units (crop, meadow, some shrub or wood), the grassy tracks between some strips GRASS.
    Three passes over the rows: the extent of each district, the parcel keys, the parcel ids in key order.
    """
    n_districts = 3 if n >= 256 else 2
    seeds = g.uniform(0, n, size=(n_districts, 2))
    angles = g.uniform(-0.5, 0.5, size=n_districts)
    jitter_field = Field(g, (n, n), max(n / 6, 12.0))

    def districts(r0: int, r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, cols = _grid(r0, r1, n)
        jitter = 0.15 * n * jitter_field.rows(r0, r1)
        d2 = np.stack([np.hypot(cols - sx, rows - sy) for sx, sy in seeds]) + jitter[None]
        return rows, cols, np.argmin(d2, axis=0)

    def along(d: int, rows: np.ndarray, cols: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(angles[d]), math.sin(angles[d])
        return cols[m] * c + rows[m] * s, -cols[m] * s + rows[m] * c

    extent: list[list[float]] = [[] for _ in range(n_districts)]
    for r0, r1 in parts:
        rows, cols, district = districts(r0, r1)
        for d in range(n_districts):
            m = district == d
            if m.any():
                xp, _ = along(d, rows, cols, m)
                extent[d] += [float(xp.min()), float(xp.max())]
    plan = []
    for d in range(n_districts):
        lo, hi = min(extent[d]) - 25.0, max(extent[d]) + 1.0
        widths = g.uniform(8.0, 22.0, size=int((hi - lo) / 8.0) + 2)
        bounds = lo + np.cumsum(widths)
        length = g.uniform(15.0, 45.0, size=bounds.size + 1)
        offset = g.uniform(0.0, 45.0, size=bounds.size + 1)
        has_track = g.random(bounds.size + 1) < 0.35
        left = np.concatenate([[lo - 25.0], bounds])
        plan.append((bounds, length, offset, has_track, left))

    unit = np.empty((n, n), dtype=np.uint8)  # first the track flag, then the unit
    fid = np.empty((n, n), dtype=np.int32)  # first the index of the key among the strip's keys, then the id
    strip_keys = []
    for r0, r1 in parts:
        rows, cols, district = districts(r0, r1)
        key = np.zeros(rows.shape, dtype=np.int64)
        track = np.zeros(rows.shape, dtype=bool)
        for d, (bounds, length, offset, has_track, left) in enumerate(plan):
            m = district == d
            xp, yp = along(d, rows, cols, m)
            strip = np.searchsorted(bounds, xp)
            row = np.floor((yp - offset[strip]) / length[strip]).astype(np.int64)
            key[m] = (d * 100_000 + strip) * 100_000 + row + 50_000
            track[m] = has_track[strip] & (xp - left[strip] < 1.0)
        keys, inverse = np.unique(key, return_inverse=True)
        fid[r0:r1] = inverse.reshape(key.shape)
        unit[r0:r1] = track
        strip_keys.append(keys)
    keys = np.unique(np.concatenate(strip_keys))
    n_parcels = keys.size + 1
    choice = g.random(n_parcels)
    parcel_unit = np.full(n_parcels, CROP, dtype=np.uint8)
    parcel_unit[choice > 0.74] = Unit.MEADOW
    parcel_unit[choice > 0.93] = Unit.SHRUB
    parcel_unit[choice > 0.96] = Unit.BROADLEAF
    parcel_unit[choice > 0.985] = Unit.NEEDLELEAF
    for (r0, r1), local in zip(parts, strip_keys, strict=True):
        ids = (np.searchsorted(keys, local) + 1).astype(np.int32)[fid[r0:r1]]
        fid[r0:r1] = ids
        unit[r0:r1] = np.where(unit[r0:r1] == 1, np.uint8(Unit.GRASS), parcel_unit[ids])
    return unit, fid


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
    parts: list[tuple[int, int]],
    mask_rows: Callable[[int, int], np.ndarray],
    *,
    block: tuple[int, int],
    p_built: float,
    green: tuple[Unit, Unit],
) -> None:
    """Fill the mask (`mask_rows(r0, r1)`, bool) with a street grid of built-up blocks and some green blocks
    (parks, gardens). Two passes over the rows: the blocks the mask touches, then the fill."""
    state = g.bit_generator.state
    ang = g.uniform(-0.6, 0.6)
    size = g.integers(block[0], block[1] + 1)
    n = unit.shape[1]

    def cells(r0: int, r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mask, block key, street) of rows [r0, r1); keys sort as (block column, block row)."""
        rows, cols = _grid(r0, r1, n)
        xp = cols * math.cos(ang) + rows * math.sin(ang)
        yp = -cols * math.sin(ang) + rows * math.cos(ang)
        bx = np.floor(xp / size).astype(np.int64)
        by = np.floor(yp / size).astype(np.int64)
        street = ((xp % size) < 1.5) | ((yp % size) < 1.5)
        return mask_rows(r0, r1), bx * 2**32 + (by + 2**31), street

    touched = []
    for r0, r1 in parts:
        mask, key, _ = cells(r0, r1)
        touched.append(np.unique(key[mask]))
    keys = np.unique(np.concatenate(touched))
    if keys.size == 0:  # nothing to fill: nothing drawn
        g.bit_generator.state = state
        return
    draw = g.random(keys.size)
    kind = np.where(draw < p_built, Unit.BUILT, np.where(draw < p_built + (1 - p_built) * 0.65, *green))
    for r0, r1 in parts:
        mask, key, street = cells(r0, r1)
        if not mask.any():
            continue
        out = unit[r0:r1]
        sub = kind[np.searchsorted(keys, key[mask])].astype(np.uint8)
        sub[street[mask]] = Unit.BUILT
        water = (out[mask] == Unit.WATER) | (out[mask] == Unit.SEASONAL_WATER)
        sub[water] = out[mask][water]
        out[mask] = sub


def _segment_distance(
    cols: np.ndarray, rows: np.ndarray, p0: tuple[float, float], p1: tuple[float, float]
) -> np.ndarray:
    (x0, y0), (x1, y1) = p0, p1
    vx, vy = x1 - x0, y1 - y0
    t = np.clip(((cols - x0) * vx + (rows - y0) * vy) / max(vx * vx + vy * vy, 1e-9), 0.0, 1.0)
    return np.hypot(cols - (x0 + t * vx), rows - (y0 + t * vy))


_NEIGHBOURS = ((0, 1), (0, -1), (1, 0), (-1, 0))


def boundary_pairs(ls: Landscape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixed pixels at patch edges: (pixel flat index, neighbour flat index, neighbour weight 0.05-0.45).

    A pixel whose 4-neighbour belongs to another patch (unit and parcel) sees a share of that neighbour
    (sensor PSF, sub-pixel boundaries); of several such neighbours one is drawn. Sorted by pixel. Two
    passes over the rows (candidates counted, then chosen) around one permutation of all candidates.
    """
    n = ls.size
    parts = strips(n, n)
    gen = rng(ls.seed, TAG_BOUNDARY)

    def candidates(r0: int, r1: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(pixel, neighbour) flat indices with pixels in rows [r0, r1), per neighbour direction, row-major."""
        a, b = max(r0 - 1, 0), min(r1 + 1, n)
        patch = ls.unit[a:b].astype(np.int64) * 2**24 + ls.field[a:b]
        out = []
        for dy, dx in _NEIGHBOURS:
            lo, hi = max(r0, -dy), min(r1, n - dy)
            c0, c1 = max(0, -dx), n - max(0, dx)
            diff = patch[lo - a : hi - a, c0:c1] != patch[lo + dy - a : hi + dy - a, c0 + dx : c1 + dx]
            rr, cc = np.nonzero(diff)
            p = (rr + lo).astype(np.int64) * n + (cc + c0)
            out.append((p, p + dy * n + dx))
        return out

    counts = np.array([[p.size for p, _ in candidates(r0, r1)] for r0, r1 in parts], dtype=np.int64)
    # index of the first candidate of (strip, direction) in the list ordered by direction, then pixel
    first = np.cumsum(counts.T.ravel()).reshape(counts.T.shape).T - counts
    position = np.empty(int(counts.sum()), dtype=np.int64)
    position[gen.permutation(position.size)] = np.arange(position.size)  # where each candidate is drawn
    ps, qs = [], []
    for s, (r0, r1) in enumerate(parts):
        found = candidates(r0, r1)
        p = np.concatenate([c[0] for c in found])
        q = np.concatenate([c[1] for c in found])
        pos = np.concatenate([position[first[s, d] : first[s, d] + c[0].size] for d, c in enumerate(found)])
        order = np.lexsort((pos, p))  # by pixel, then by draw: a pixel mixes with its first-drawn neighbour
        p, q = p[order], q[order]
        keep = np.ones(p.size, dtype=bool)
        keep[1:] = p[1:] != p[:-1]
        ps.append(p[keep])
        qs.append(q[keep])
    p, q = np.concatenate(ps), np.concatenate(qs)
    weight = gen.uniform(0.05, 0.45, size=p.size).astype(np.float32)
    return p, q, weight


def erode_classes(codes: np.ndarray, radius: int) -> np.ndarray:
    """True where the (2 radius + 1)^2 window around a pixel holds one class (`radius` px from any edge)."""
    size = 2 * radius + 1
    return (ndimage.maximum_filter(codes, size=size, mode="nearest") == codes) & (
        ndimage.minimum_filter(codes, size=size, mode="nearest") == codes
    )
