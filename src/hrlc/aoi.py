"""Areas of interest as users write them: `left,bottom,right,top` numbers or a vector file (GeoJSON,
GeoPackage, Shapefile), turned into a bounding box and its CRS. Used by every command that takes `--aoi`."""

from __future__ import annotations

from pathlib import Path

from hrlc.errors import InputError

BBox = tuple[float, float, float, float]

VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp"}


def parse_aoi(aoi: str, aoi_crs: str = "EPSG:4326") -> tuple[BBox, str]:
    """`left,bottom,right,top` (in `aoi_crs`) or a GeoJSON/vector file (in its own CRS) -> (bbox, crs).

    Raises `InputError` with a one-line message for anything else."""
    path = Path(aoi)
    if path.suffix.lower() in VECTOR_SUFFIXES:
        if not path.is_file():
            raise InputError(f"AOI file {aoi} does not exist")
        import geopandas as gpd

        try:
            gdf = gpd.read_file(path)
        except Exception as e:  # noqa: BLE001 - any reader failure is bad input here
            raise InputError(f"cannot read AOI file {aoi}: {e}") from e
        if gdf.empty:
            raise InputError(f"AOI file {aoi} has no geometry")
        crs = gdf.crs.to_string() if gdf.crs else "EPSG:4326"
        left, bottom, right, top = (float(v) for v in gdf.total_bounds)
        return (left, bottom, right, top), crs
    try:
        values = [float(v) for v in aoi.replace(" ", "").split(",")]
    except ValueError:
        raise InputError(f"--aoi {aoi!r} is neither 'left,bottom,right,top' nor a GeoJSON file") from None
    if len(values) != 4:
        raise InputError(f"--aoi needs 4 numbers left,bottom,right,top; got {len(values)}")
    left, bottom, right, top = values
    if not (left < right and bottom < top):
        raise InputError(f"--aoi {aoi} is empty: it must be left,bottom,right,top")
    return (left, bottom, right, top), aoi_crs
