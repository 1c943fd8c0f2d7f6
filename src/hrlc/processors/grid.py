"""The target grid of a processing request: an AOI bbox turned into a GeoBox in a projected CRS."""

from __future__ import annotations

from odc.geo import CRS
from odc.geo.geobox import GeoBox
from odc.geo.geom import BoundingBox


def utm_crs(lon: float, lat: float) -> str:
    """The WGS 84 / UTM zone CRS of a point."""
    zone = int((lon + 180) // 6) % 60 + 1
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def target_grid(
    bbox: tuple[float, float, float, float] | list[float],
    *,
    bbox_crs: str = "EPSG:4326",
    crs: str | None = None,
    resolution: float,
) -> GeoBox:
    """The grid covering `bbox` (in `bbox_crs`) at `resolution` metres in `crs` (default: UTM of its centre).
    Pixel edges are snapped to multiples of the resolution, so grids of the same CRS line up."""
    left, bottom, right, top = map(float, bbox)
    if not (left < right and bottom < top):
        raise ValueError(f"bbox {list(bbox)} is empty: it must be [left, bottom, right, top]")
    box = BoundingBox(left, bottom, right, top, crs=CRS(bbox_crs))
    if crs is None:
        ll = box.to_crs("EPSG:4326")
        crs = utm_crs((ll.left + ll.right) / 2, (ll.bottom + ll.top) / 2)
    if CRS(crs) != CRS(bbox_crs):
        box = box.to_crs(crs)
    return GeoBox.from_bbox(box, resolution=resolution, tight=False)
