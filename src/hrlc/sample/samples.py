"""Training samples drawn from the truth map: stratified points (GeoPackage) and small polygons (GeoJSON).

Why: the classification chain needs reference data in the two forms users bring them in: points with a
class code in the map projection, and hand-drawn homogeneous polygons in geographic coordinates.
Points lie at least `POINT_BUFFER_PX` pixels inside a class patch (no edge pixels, fewer if a class is
too small), at a random position inside their pixel; polygons are 3-6 px rectangles (2-3 px squares in
thin classes) lying fully inside one class with a one-pixel margin, not touching each other.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
from shapely.geometry import Point, box

from hrlc.legend import name
from hrlc.sample._noise import TAG_POINTS, TAG_POLYGONS, rng
from hrlc.sample.grid import Grid
from hrlc.sample.landscape import erode_classes

POINTS_PER_CLASS = 250
POLYGONS_PER_CLASS = 30
POINT_BUFFER_PX = 2
MIN_POINTS = 25


def sample_points(
    codes: np.ndarray, grid: Grid, seed: int, per_class: int = POINTS_PER_CLASS
) -> gpd.GeoDataFrame:
    """Stratified random points: `per_class` per class (fewer if the class is small), in the grid CRS."""
    gen = rng(seed, TAG_POINTS)
    interior = {r: erode_classes(codes, r) for r in range(POINT_BUFFER_PX, -1, -1)}
    rows_all: list[np.ndarray] = []
    cols_all: list[np.ndarray] = []
    for code in np.unique(codes):
        for r in range(POINT_BUFFER_PX, -1, -1):
            ys, xs = np.nonzero((codes == code) & interior[r])
            if ys.size >= min(per_class, 4 * MIN_POINTS) or r == 0:
                break
        count = min(per_class, max(MIN_POINTS, ys.size // 8), ys.size)
        take = gen.choice(ys.size, size=count, replace=False)
        take.sort()
        rows_all.append(ys[take])
        cols_all.append(xs[take])
    rows = np.concatenate(rows_all)
    cols = np.concatenate(cols_all)
    jitter = gen.uniform(0.1, 0.9, size=(2, rows.size))
    t = grid.transform
    xs_m = t.c + (cols + jitter[0]) * t.a
    ys_m = t.f + (rows + jitter[1]) * t.e
    values = codes[rows, cols].astype(np.int32)
    return gpd.GeoDataFrame(
        {
            "point_id": np.arange(1, rows.size + 1, dtype=np.int32),
            "class_code": values,
            "class_name": [name(v) for v in values],
        },
        geometry=[Point(x, y) for x, y in zip(xs_m.round(2), ys_m.round(2), strict=True)],
        crs=grid.crs,
    )


def sample_polygons(
    codes: np.ndarray, grid: Grid, seed: int, per_class: int = POLYGONS_PER_CLASS
) -> gpd.GeoDataFrame:
    """Small homogeneous rectangles (3-6 px sides; 2-3 px squares in thin classes) lying one pixel inside
    their class, not touching each other, in EPSG:4326."""
    gen = rng(seed, TAG_POLYGONS)
    n = codes.shape[0]
    used = np.zeros(codes.shape, dtype=bool)
    t = grid.transform
    records: list[tuple[int, object]] = []
    # (erosion radius of candidate centres, side lengths): 3-6 px rectangles, then 3 and 2 px squares.
    shapes = ((3, (3, 6)), (2, (3, 3)), (1, (2, 2)))
    homogeneous = {r: erode_classes(codes, r) for r, _ in shapes}
    for code in np.unique(codes):
        count = 0
        for radius, (lo, hi) in shapes:
            if count >= per_class:
                break
            ys, xs = np.nonzero((codes == code) & homogeneous[radius])
            for i in gen.permutation(ys.size):
                if count >= per_class:
                    break
                h, w = (int(v) for v in gen.integers(lo, hi + 1, size=2))
                r0, c0 = int(ys[i]) - h // 2, int(xs[i]) - w // 2
                r1, c1 = r0 + h, c0 + w
                if r0 < 1 or c0 < 1 or r1 > n - 1 or c1 > n - 1:
                    continue
                window = codes[r0 - 1 : r1 + 1, c0 - 1 : c1 + 1]
                if (window != code).any() or used[max(r0 - 2, 0) : r1 + 2, max(c0 - 2, 0) : c1 + 2].any():
                    continue
                used[r0:r1, c0:c1] = True
                left, top = t.c + c0 * t.a, t.f + r0 * t.e
                records.append((int(code), box(left, top + h * t.e, left + w * t.a, top)))
                count += 1
    frame = gpd.GeoDataFrame(
        {
            "polygon_id": np.arange(1, len(records) + 1, dtype=np.int32),
            "class_code": np.array([c for c, _ in records], dtype=np.int32),
            "class_name": [name(c) for c, _ in records],
        },
        geometry=[g for _, g in records],
        crs=grid.crs,
    )
    return frame.to_crs("EPSG:4326")


def write_points(points: gpd.GeoDataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    points.to_file(path, layer="training_points", driver="GPKG", engine="pyogrio")
    return path


def write_polygons(polygons: gpd.GeoDataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    polygons.to_file(path, driver="GeoJSON", engine="pyogrio", COORDINATE_PRECISION=7, RFC7946="YES")
    return path
