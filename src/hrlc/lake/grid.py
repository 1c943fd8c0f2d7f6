"""The product grid: a fixed tiling of every UTM zone, so that the tiles of any two jobs coincide.

Products are made per tile and clipped to an AOI only in the mosaic (issue 13). A tile's id is the `space` of
a product's identity (`hrlc.lake.identity`), so identical tiles of different jobs share their products.

**The tiling.** In each zone's CRS (WGS 84 / UTM, EPSG:326zz north, 327zz south) tiles are squares of `tile_m`
metres anchored at easting 0 / northing 0: tile (col, row) covers eastings [col, col + 1) × tile_m and
northings [row, row + 1) × tile_m, so col = floor(easting / tile_m), row = floor(northing / tile_m) (rows count
northwards; they are negative south of the equator in a northern zone's CRS, columns never in practice). The
default `TILE_M` = 109 800 m is the size of a Sentinel-2 tile: 10 980 px at 10 m, 5 490 at 20 m, 3 660 at 30 m,
1 830 at 60 m. A smaller `tile_m` (tests, demos) must be a multiple of every resolution it is used with
(`Tile.geobox` and `windows` refuse otherwise). Pixel edges of a tile are then multiples of the resolution:
the same lines `hrlc.catalog.sources.grid_for` snaps an AOI grid to (``anchor="edge"``), so an AOI grid in
the tiles' zone is a window of the tile grids, pixel for pixel (`windows`).

**Why not the Sentinel-2 MGRS tiles.** A Sentinel-2 tile starts at (within a few tens of metres of) the
corner of an MGRS 100 km square and is 109.8 km wide, so neighbours overlap by 9.8 km; the squares are cut by
zone edges and named per 8° latitude band. Product tiles must not overlap (a pixel belongs to one tile, or
seams and shared products disagree), and the MGRS 100 km squares themselves do not fit the chain's resolutions
(100 000 m is not a multiple of 30 m: tile edges would cut Landsat pixels). So hrlc keeps the Sentinel-2 tile
*size* and drops the MGRS *layout*: a tile is not a Sentinel-2 granule (it straddles up to four of them);
inputs are read onto the tile's grid by odc-stac whatever their own tiling. The grid is odc-geo's `GridSpec`
(origin 0, 0); morecantile was not used: its tile matrix sets are zoom pyramids with a bounded extent and a
top-left origin, not one unbounded partition per zone.

**The zone of an AOI** (`zone_of`): the zone of the AOI's CRS when that is a WGS 84 / UTM zone, else the zone
of the AOI's centre by the rule of `hrlc.catalog.sources.utm_crs` (regular 6° zones, no Norway exceptions,
north when the centre's latitude is ≥ 0), the CRS `grid_for` picks. An AOI across a zone boundary gets tiles of
its zone only, extending past the zone edge (UTM stays usable a few degrees beyond); so the same ground can lie
in tiles of two zones, as Sentinel-2 tiles do there. They never collide: the zone is part of the id. An AOI
spanning many zones would be badly distorted in one; splitting it per zone is left to the planner. The tiles
of an AOI (`tiles_of`) are those its grid touches: the AOI's bounding box reprojected into the zone as
`grid_for` does it, not only the tiles under the AOI's outline, so the tiles cover every pixel of the AOI grid.
For an AOI given in a UTM CRS whose centre lies outside that zone, `grid_for` without `crs` picks the centre's
zone: callers pass ``crs=zone_of(...).crs`` so that the AOI grid and its tiles share a CRS.

**Tile ids** (`Tile.id`, `parse_tile`): ``utm{zone}{n|s}-{tile_m}-{col}-{row}``, e.g. ``utm32n-109800-4-46``,
a valid identity `space` (``[A-Za-z0-9][A-Za-z0-9-]*``); a negative column or row is written ``m`` + its
absolute value (``utm32n-109800-4-m1``, just south of the equator). The form is canonical (no leading zeros,
no ``m0``): `parse_tile` accepts exactly the ids `Tile.id` makes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from odc.geo import geom
from odc.geo.crs import CRS
from odc.geo.geobox import GeoBox
from odc.geo.gridspec import GridSpec

TILE_M = 109_800  # metres: a Sentinel-2 tile (10 980 px at 10 m, 3 660 px at 30 m)

_INT = r"(0|m?[1-9][0-9]*)"  # canonical: no leading zero, no "m0"
TILE_PATTERN = rf"^utm([1-9]|[1-5][0-9]|60)([ns])-([1-9][0-9]*)-{_INT}-{_INT}$"
"""A tile id (`Tile.id`), as a JSON Schema / pydantic pattern."""
_TILE_REGEX = re.compile(TILE_PATTERN.strip("^$"))
_PIXEL_TOL = 1e-6  # pixels: odc-geo's snapping tolerance (odc.geo.math.snap_grid)


@dataclass(frozen=True, order=True)
class Zone:
    """A WGS 84 / UTM zone: `number` 1..60, `south` for the southern-hemisphere CRS (false northing 10 000 km)."""

    number: int
    south: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 60:
            raise ValueError(f"UTM zone {self.number} is not in 1..60")

    @property
    def epsg(self) -> int:
        return (32700 if self.south else 32600) + self.number

    @property
    def crs(self) -> str:
        """The zone's CRS, e.g. ``EPSG:32632``."""
        return f"EPSG:{self.epsg}"

    @classmethod
    def of_point(cls, lon: float, lat: float) -> Zone:
        """The zone of a lon/lat point (`hrlc.catalog.sources.utm_crs` is this rule)."""
        number = min(max(int(math.floor((lon + 180.0) / 6.0)) + 1, 1), 60)
        return cls(number, south=lat < 0)

    @classmethod
    def of_crs(cls, crs: str | int) -> Zone | None:
        """The zone whose CRS `crs` is (EPSG:326zz / 327zz), else None."""
        epsg = CRS(_crs_name(crs)).epsg
        if epsg is not None and (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
            return cls(epsg % 100, south=epsg > 32700)
        return None


@dataclass(frozen=True, order=True)
class Tile:
    """One tile of the product grid: column `col` and row `row` of the `tile_m`-metre tiling of `zone`."""

    zone: Zone
    tile_m: int
    col: int
    row: int

    def __post_init__(self) -> None:
        _check_size(self.tile_m)

    @property
    def id(self) -> str:
        """``utm{zone}{n|s}-{tile_m}-{col}-{row}``: a valid identity `space` (module docstring)."""
        hemisphere = "s" if self.zone.south else "n"
        return f"utm{self.zone.number}{hemisphere}-{self.tile_m}-{_signed(self.col)}-{_signed(self.row)}"

    @property
    def bounds(self) -> geom.BoundingBox:
        """The tile's extent in its zone's CRS (metres): left, bottom, right, top."""
        x, y = self.col * self.tile_m, self.row * self.tile_m
        return geom.BoundingBox(x, y, x + self.tile_m, y + self.tile_m, crs=self.zone.crs)

    def geobox(self, resolution: float) -> GeoBox:
        """The tile's pixel grid at `resolution` metres: `tile_m / resolution` square pixels, north up, edges on
        multiples of `resolution`. ValueError if `tile_m` is not a multiple of `resolution`."""
        return _gridspec(self.zone, self.tile_m, resolution).tile_geobox((self.col, self.row))

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True)
class TileWindow:
    """Where an AOI grid and a tile's grid (at the AOI's resolution) share pixels: ``tile_data[tile_roi]`` is
    ``aoi_data[aoi_roi]``, both ``(rows, cols)`` slices of the same shape."""

    tile: Tile
    tile_roi: tuple[slice, slice]
    aoi_roi: tuple[slice, slice]

    def to_aoi(self, rows: slice, cols: slice) -> tuple[slice, slice]:
        """The AOI grid's rows and columns of the tile grid's `rows` and `cols` (inside `tile_roi`)."""
        return shifted(rows, cols, self.tile_roi, self.aoi_roi)


def shifted(
    rows: slice, cols: slice, src: tuple[slice, slice], dst: tuple[slice, slice]
) -> tuple[slice, slice]:
    """`rows` and `cols` of a grid whose window `src` is the window `dst` of another: their slices there."""
    dr, dc = dst[0].start - src[0].start, dst[1].start - src[1].start
    return slice(rows.start + dr, rows.stop + dr), slice(cols.start + dc, cols.stop + dc)


def parse_tile(tile_id: str) -> Tile:
    """The tile of an id made by `Tile.id`; ValueError for anything else (non-canonical forms included)."""
    m = _TILE_REGEX.fullmatch(tile_id)
    if m is None:
        raise ValueError(f"{tile_id!r} is not a tile id like 'utm32n-109800-4-46'")
    number, hemisphere, size, col, row = m.groups()
    return Tile(Zone(int(number), hemisphere == "s"), int(size), _unsigned(col), _unsigned(row))


def zone_of(bbox: tuple[float, float, float, float], bbox_crs: str | int = "EPSG:4326") -> Zone:
    """The zone of an AOI (`bbox` = left, bottom, right, top in `bbox_crs`): the zone of `bbox_crs` if it is a
    UTM zone, else the zone of the AOI's centre (as `hrlc.catalog.sources.grid_for` picks it)."""
    zone = Zone.of_crs(bbox_crs)
    if zone is not None:
        return zone
    lon, lat = _box(bbox, bbox_crs).centroid.to_crs("EPSG:4326").points[0]
    return Zone.of_point(lon, lat)


def tiles_of(
    bbox: tuple[float, float, float, float], bbox_crs: str | int = "EPSG:4326", tile_m: int = TILE_M
) -> list[Tile]:
    """The tiles an AOI touches, sorted (by column, then row): the tiles of its zone (`zone_of`) that share
    area with the AOI's bounding box in that zone's CRS, i.e. with its grid made by `grid_for`."""
    zone = zone_of(bbox, bbox_crs)
    box = _box(bbox, bbox_crs)
    if box.crs != zone.crs:  # the same densified reprojection as grid_for
        x0, y0, x1, y1 = bbox
        box = box.to_crs(zone.crs, resolution=max(x1 - x0, y1 - y0) / 64)
    return _tiles(zone, tile_m, box.boundingbox)


def windows(aoi: GeoBox, tile_m: int = TILE_M) -> list[TileWindow]:
    """The AOI grid `aoi` as windows of the tile grids at its resolution: one `TileWindow` per tile it touches,
    sorted like `tiles_of`. Pasting every ``tile_data[w.tile_roi]`` at ``aoi_data[w.aoi_roi]`` fills the AOI grid
    exactly once. ValueError unless `aoi` is a north-up grid of square pixels in a UTM zone's CRS, with edges on
    multiples of its resolution (`grid_for`, ``anchor="edge"``) and `tile_m` a multiple of that resolution."""
    zone = Zone.of_crs(str(aoi.crs))
    if zone is None:
        raise ValueError(f"the AOI grid is in {aoi.crs}, not a UTM zone: tiles are per UTM zone")
    a = aoi.transform
    if a.b != 0 or a.d != 0 or a.a <= 0 or a.e != -a.a:
        raise ValueError("the AOI grid must be north up with square pixels")
    resolution = a.a
    if not (_whole(a.c / resolution) and _whole(a.f / resolution)):
        raise ValueError(f"the AOI grid's edges are not on multiples of its resolution {resolution} m")
    found = []
    for tile in _tiles(zone, tile_m, aoi.extent.boundingbox):
        grid = tile.geobox(resolution)
        (rows, cols), (aoi_rows, aoi_cols) = grid.overlap_roi(aoi), aoi.overlap_roi(grid)
        if rows.stop > rows.start and cols.stop > cols.start:
            tile_roi = (slice(rows.start, rows.stop), slice(cols.start, cols.stop))
            aoi_roi = (slice(aoi_rows.start, aoi_rows.stop), slice(aoi_cols.start, aoi_cols.stop))
            found.append(TileWindow(tile, tile_roi, aoi_roi))
    return found


def _tiles(zone: Zone, tile_m: int, bounds: geom.BoundingBox) -> list[Tile]:
    """The tiles of `zone` sharing area with `bounds` (in the zone's CRS)."""
    _check_size(tile_m)
    col0, row0, col1, row1 = _gridspec(zone, tile_m, tile_m).idx_bounds(bounds)
    return sorted(Tile(zone, tile_m, col, row) for col in range(col0, col1) for row in range(row0, row1))


def _gridspec(zone: Zone, tile_m: int, resolution: float) -> GridSpec:
    """odc-geo's grid of `zone` at `resolution`: tiles of `tile_m` metres from origin (0, 0)."""
    if not resolution > 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    pixels = tile_m / resolution
    if not _whole(pixels):
        raise ValueError(f"tile size {tile_m} m is not a multiple of the resolution {resolution} m")
    n = round(pixels)
    return GridSpec(zone.crs, tile_shape=(n, n), resolution=resolution)


def _check_size(tile_m: int) -> None:
    if isinstance(tile_m, bool) or not isinstance(tile_m, int) or tile_m <= 0:
        raise ValueError(f"tile size must be a positive whole number of metres, got {tile_m!r}")


def _whole(value: float) -> bool:
    return abs(value - round(value)) <= _PIXEL_TOL


def _box(bbox: tuple[float, float, float, float], bbox_crs: str | int) -> geom.Geometry:
    x0, y0, x1, y1 = (float(v) for v in bbox)
    if not (x0 < x1 and y0 < y1):
        raise ValueError(f"bbox {list(bbox)} is empty: it must be [left, bottom, right, top]")
    return geom.box(x0, y0, x1, y1, _crs_name(bbox_crs))


def _crs_name(crs: str | int) -> str:
    return f"EPSG:{crs}" if isinstance(crs, int) else crs


def _signed(n: int) -> str:
    return f"m{-n}" if n < 0 else str(n)


def _unsigned(text: str) -> int:
    return -int(text[1:]) if text.startswith("m") else int(text)


__all__ = [
    "TILE_M",
    "TILE_PATTERN",
    "Tile",
    "TileWindow",
    "Zone",
    "parse_tile",
    "tiles_of",
    "windows",
    "zone_of",
]
