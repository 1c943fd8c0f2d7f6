"""The map grid of the synthetic repository: UTM zone 33N, 10 m pixels (Sentinel-2) and 30 m (Landsat).

Why: one place that says where the synthetic tile lies, so scenes, truth map, samples and STAC metadata
agree. The default origin (430 080 E, 5 160 960 N) lies in MGRS tile 33TVM, in the pre-alpine valley of
the upper Sava in Slovenia (about 14.1 E, 46.6 N). Both coordinates are multiples of 61 440 m, so the tiles of
the product grid (`hrlc.lake.grid`) of any size dividing 61 440 m start at the repository's corner: a repository
of N px is one tile of 10·N m, or 2 x 2 tiles of 5·N m (for N dividing 12 288: 96, 128, 256, ... 4096).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from rasterio.warp import transform_bounds, transform_geom

EPSG = 32633
X0, Y0 = 430_080.0, 5_160_960.0  # multiples of 61 440 m (module docstring)
PIXEL = 10.0
LANDSAT_PIXEL = 30.0


@dataclass(frozen=True)
class Grid:
    """A north-up grid of `size` x `size` pixels of `pixel` metres, upper-left corner at (x0, y0)."""

    size: int
    epsg: int = EPSG
    x0: float = X0
    y0: float = Y0
    pixel: float = PIXEL

    @property
    def crs(self) -> str:
        return f"EPSG:{self.epsg}"

    @property
    def transform(self) -> Affine:
        return Affine(self.pixel, 0.0, self.x0, 0.0, -self.pixel, self.y0)

    @property
    def landsat_size(self) -> int:
        """Pixels of the 30 m grid with the same origin covering the 10 m grid: ceil(size / 3)."""
        return -(-self.size // 3)

    @property
    def landsat_transform(self) -> Affine:
        return Affine(LANDSAT_PIXEL, 0.0, self.x0, 0.0, -LANDSAT_PIXEL, self.y0)

    def bounds(self, landsat: bool = False) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in grid coordinates."""
        extent = self.landsat_size * LANDSAT_PIXEL if landsat else self.size * self.pixel
        return (self.x0, self.y0 - extent, self.x0 + extent, self.y0)

    def bbox(self, landsat: bool = False) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees (EPSG:4326)."""
        w, s, e, n = transform_bounds(self.crs, "EPSG:4326", *self.bounds(landsat), densify_pts=21)
        down, up = (lambda v: math.floor(v * 1e7) / 1e7), (lambda v: math.ceil(v * 1e7) / 1e7)
        return (down(w), down(s), up(e), up(n))

    def footprint(self, landsat: bool = False) -> dict[str, object]:
        """The grid outline as a GeoJSON polygon in EPSG:4326 (corners, counter-clockwise)."""
        left, bottom, right, top = self.bounds(landsat)
        ring = [(left, bottom), (right, bottom), (right, top), (left, top), (left, bottom)]
        geom = transform_geom(self.crs, "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})
        coords = [[round(x, 7), round(y, 7)] for x, y in geom["coordinates"][0]]
        return {"type": "Polygon", "coordinates": [coords]}
