"""The product grid (hrlc.lake.grid): fixed tiles per UTM zone, ids that are identity spaces, AOI windows."""

from __future__ import annotations

import re

import numpy as np
import pytest
from odc.geo.geobox import GeoBox

from hrlc.catalog.sources import grid_for
from hrlc.lake import layout
from hrlc.lake.grid import TILE_M, Tile, Zone, parse_tile, tiles_of, windows, zone_of
from hrlc.lake.identity import SPACE_REGEX

CFG = "0123456789abcdef"
N32 = Zone(32)


def _centres(g: GeoBox) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre eastings and northings of a north-up grid (exact for whole-metre grids)."""
    a = g.transform
    xs = a.c + (np.arange(g.shape.x) + 0.5) * a.a
    ys = a.f + (np.arange(g.shape.y) + 0.5) * a.e
    return np.broadcast_to(xs, g.shape.yx), np.broadcast_to(ys[:, None], g.shape.yx)


@pytest.mark.parametrize(
    "tile",
    [
        Tile(N32, TILE_M, 4, 46),
        Tile(Zone(1), TILE_M, 1, 0),
        Tile(Zone(60, south=True), TILE_M, 7, 90),
        Tile(Zone(5, south=True), 2400, 123, 4321),
        Tile(Zone(36), 3000, 2, -1),  # south of the equator in a northern zone's CRS
        Tile(Zone(36), 30, -12, -3456),
    ],
)
def test_tile_ids_round_trip_and_are_identity_spaces(tile: Tile) -> None:
    assert parse_tile(tile.id) == tile
    assert re.fullmatch(SPACE_REGEX, tile.id)
    key = layout.key("class-map", kind="optical", year=2021, period="annual", space=tile.id, config=CFG)
    assert layout.parse(key)["space"] == tile.id
    assert parse_tile(layout.parse(key)["space"]) == tile


def test_tile_id_reads_as_zone_hemisphere_size_column_row() -> None:
    assert Tile(N32, TILE_M, 4, 46).id == "utm32n-109800-4-46"
    assert Tile(Zone(56, south=True), TILE_M, 2, 55).id == "utm56s-109800-2-55"
    assert Tile(Zone(36), 3000, 2, -1).id == "utm36n-3000-2-m1"


@pytest.mark.parametrize(
    "bad",
    [
        "utm032n-109800-4-46",  # leading zero
        "utm32n-109800-04-46",
        "utm32n-0109800-4-46",
        "utm32n-109800-4-m0",  # minus zero
        "utm32n-109800-4--1",
        "utm61n-109800-4-46",  # no zone 61
        "utm0n-109800-4-46",
        "utm32x-109800-4-46",
        "utm32n-0-4-46",  # no size
        "UTM32N-109800-4-46",
        "utm32n-109800-4-46-",
        "utm32n-109800-4",
        "32TQM",
        "",
    ],
)
def test_parse_tile_refuses_anything_but_a_canonical_id(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a tile id"):
        parse_tile(bad)


@pytest.mark.parametrize(("resolution", "pixels"), [(10, 10_980), (20, 5_490), (30, 3_660), (60, 1_830)])
def test_a_sentinel2_size_tile_has_whole_pixels_at_every_chain_resolution(
    resolution: int, pixels: int
) -> None:
    tile = Tile(N32, TILE_M, 4, 46)
    g = tile.geobox(resolution)
    assert g.shape.yx == (pixels, pixels)
    assert str(g.crs) == "EPSG:32632"
    assert tuple(g.transform)[:6] == (resolution, 0, 439_200, 0, -resolution, 5_160_600)
    assert tuple(g.extent.boundingbox) == tuple(tile.bounds) == (439_200, 5_050_800, 549_000, 5_160_600)


def test_a_tile_size_that_is_not_a_multiple_of_the_resolution_is_refused() -> None:
    tile = Tile(N32, 1000, 40, 5000)
    assert tile.geobox(10).shape.yx == (100, 100) and tile.geobox(20).shape.yx == (50, 50)
    with pytest.raises(ValueError, match="tile size 1000 m is not a multiple of the resolution 30 m") as e:
        tile.geobox(30)
    assert "\n" not in str(e.value)
    aoi = grid_for((500_000, 5_000_000, 503_000, 5_003_000), bbox_crs=32632, resolution=30)
    with pytest.raises(ValueError, match="not a multiple"):
        windows(aoi, tile_m=1000)
    with pytest.raises(ValueError, match="positive whole number"):
        tiles_of((9.0, 45.0, 9.1, 45.1), tile_m=1000.5)  # type: ignore[arg-type]


def test_columns_and_rows_are_floor_of_easting_and_northing_over_the_tile_size() -> None:
    # a small AOI in UTM 32N around easting 500 000, northing 5 000 000
    (tile,) = tiles_of((500_010, 5_000_010, 500_500, 5_000_500), "EPSG:32632")
    assert (tile.zone, tile.col, tile.row) == (N32, 500_000 // TILE_M, 5_000_000 // TILE_M) == (N32, 4, 45)


def test_tiles_of_two_overlapping_aois_coincide() -> None:
    a = tiles_of((8.95, 45.60, 9.45, 46.05))
    b = tiles_of((9.30, 45.90, 9.80, 46.30))
    shared = set(a) & set(b)
    assert shared and all(t.zone == N32 for t in a + b)
    for tile in shared:  # the same tile, the same pixels, whichever job asked
        assert tile.geobox(10) == parse_tile(tile.id).geobox(10)
    assert a == sorted(a) and b == sorted(b)
    # the overlap of the two AOIs lies in shared tiles only
    overlap = tiles_of((9.30, 45.90, 9.45, 46.05))
    assert set(overlap) <= shared


def test_an_aoi_across_a_tile_edge_gets_two_tiles_that_abut_exactly() -> None:
    west, east = tiles_of((439_000, 5_100_000, 439_500, 5_100_500), "EPSG:32632")
    assert (west.col, east.col, west.row, east.row) == (3, 4, 46, 46)
    for resolution in (10, 30):
        gw, ge = west.geobox(resolution), east.geobox(resolution)
        bw, be = gw.extent.boundingbox, ge.extent.boundingbox
        assert bw.right == be.left == 439_200  # no gap
        assert (bw.bottom, bw.top) == (be.bottom, be.top)
        assert gw.extent.intersection(ge.extent).area == 0  # no overlap
        xw, _ = _centres(gw)
        xe, _ = _centres(ge)
        assert xe[0, 0] - xw[0, -1] == resolution  # the pixel columns run on across the edge


def test_an_aoi_across_a_zone_boundary_gets_tiles_of_its_centres_zone_only() -> None:
    bbox = (11.80, 46.00, 12.40, 46.20)  # centre 12.1°E: zone 33; its western part lies in zone 32
    tiles = tiles_of(bbox)
    assert {t.zone for t in tiles} == {Zone(33)} and all(t.id.startswith("utm33n-") for t in tiles)
    assert zone_of(bbox).crs == grid_for(bbox, resolution=10).crs == "EPSG:32633"
    # the tiles cover the AOI's grid, past the zone edge
    grid = grid_for(bbox, crs="EPSG:32633", resolution=10)
    left = min(t.bounds.left for t in tiles)
    right = max(t.bounds.right for t in tiles)
    assert left <= grid.extent.boundingbox.left and right >= grid.extent.boundingbox.right
    # the same ground from an AOI centred in zone 32 gets zone-32 tiles: other ids, no collision
    other = tiles_of((11.60, 46.00, 12.20, 46.20))
    assert {t.zone for t in other} == {N32} and not {t.id for t in tiles} & {t.id for t in other}


def test_an_aoi_given_in_a_utm_crs_keeps_that_zone() -> None:
    assert zone_of((500_000, 5_000_000, 510_000, 5_010_000), "EPSG:32632") == N32
    assert zone_of((500_000, 5_000_000, 510_000, 5_010_000), 32733) == Zone(33, south=True)
    # a UTM AOI whose centre lies east of its zone still gets its own zone's tiles
    assert {t.zone for t in tiles_of((900_000, 5_000_000, 910_000, 5_010_000), "EPSG:32632")} == {N32}
    assert Zone.of_crs("EPSG:3035") is None and Zone.of_crs(4326) is None


def test_southern_hemisphere_tiles_are_in_the_southern_zone_crs() -> None:
    bbox = (150.0, -35.0, 150.1, -34.9)
    (tile,) = tiles_of(bbox)
    assert tile.zone == Zone(56, south=True) and tile.id.startswith("utm56s-109800-")
    g = tile.geobox(30)
    assert str(g.crs) == "EPSG:32756" == grid_for(bbox, resolution=30).crs
    assert tile.row == int(g.extent.boundingbox.bottom // TILE_M) > 0  # false northing: rows stay positive
    assert parse_tile(tile.id) == tile


def test_an_aoi_across_the_equator_gets_negative_rows_in_its_northern_zone() -> None:
    tiles = tiles_of((30.0, -0.05, 30.1, 0.1), tile_m=3000)  # centre north of the equator: zone 36N
    assert {t.zone for t in tiles} == {Zone(36)}
    assert {t.row for t in tiles} >= {-1, 0}
    assert all(parse_tile(t.id) == t for t in tiles)
    assert any("-m" in t.id for t in tiles)


def test_zone_of_agrees_with_grid_for() -> None:
    rng = np.random.default_rng(13)
    for lon, lat in zip(rng.uniform(-179.5, 179.4, 60), rng.uniform(-79.5, 79.5, 60), strict=True):
        bbox = (float(lon), float(lat), float(lon) + 0.1, float(lat) + 0.1)
        assert zone_of(bbox).crs == grid_for(bbox, resolution=30).crs, bbox


@pytest.mark.parametrize("resolution", [10, 30])
@pytest.mark.parametrize(
    "bbox",
    [
        (9.10, 45.95, 9.22, 46.02),  # northern hemisphere
        (-47.95, -15.85, -47.83, -15.74),  # southern hemisphere
    ],
)
def test_tiles_clipped_to_the_aoi_equal_the_aoi_grid_pixel_for_pixel(bbox: tuple, resolution: int) -> None:
    tile_m = 2400  # 240 px at 10 m, 80 px at 30 m: several tiles across the AOI
    zone = zone_of(bbox)
    aoi = grid_for(bbox, crs=zone.crs, resolution=resolution)  # the AOI grid as the chain makes it today
    found = windows(aoi, tile_m=tile_m)
    assert [w.tile for w in found] == tiles_of(bbox, tile_m=tile_m) and len(found) >= 4
    x_aoi, y_aoi = _centres(aoi)
    x, y = np.full(aoi.shape.yx, np.nan), np.full(aoi.shape.yx, np.nan)
    written = np.zeros(aoi.shape.yx, dtype=int)
    for w in found:  # a product made per tile (here: its pixel centres), pasted into the AOI grid
        x_tile, y_tile = _centres(w.tile.geobox(resolution))
        x[w.aoi_roi], y[w.aoi_roi] = x_tile[w.tile_roi], y_tile[w.tile_roi]
        written[w.aoi_roi] += 1
    assert (written == 1).all()  # every AOI pixel from exactly one tile
    assert np.array_equal(x, x_aoi) and np.array_equal(y, y_aoi)  # the same pixels, exactly
    x.fill(np.nan)
    for w in found:  # block by block (37 px, a mosaic's blocks), placed by to_aoi
        x_tile, _ = _centres(w.tile.geobox(resolution))
        (r0, r1), (c0, c1) = (
            (w.tile_roi[0].start, w.tile_roi[0].stop),
            (w.tile_roi[1].start, w.tile_roi[1].stop),
        )
        for r in range(r0, r1, 37):
            for c in range(c0, c1, 37):
                rows, cols = slice(r, min(r + 37, r1)), slice(c, min(c + 37, c1))
                x[w.to_aoi(rows, cols)] = x_tile[rows, cols]
    assert np.array_equal(x, x_aoi)


def test_windows_refuse_a_grid_that_is_not_a_window_of_the_tiles() -> None:
    bbox = (500_000, 5_000_000, 503_000, 5_003_000)
    with pytest.raises(ValueError, match="not a UTM zone"):
        windows(grid_for(bbox, bbox_crs=32632, crs=3035, resolution=30))
    with pytest.raises(ValueError, match="not on multiples of its resolution"):
        windows(grid_for(bbox, bbox_crs=32632, resolution=30, anchor="center"))
