"""Writer of Cloud Optimized GeoTIFFs into the Data Lake (GDAL's COG driver through rasterio).

Every raster product of hrlc goes through `write_cog`: tiled 512 px, DEFLATE with predictor, internal
overviews (nearest for class maps, average for continuous data), nodata set, band descriptions, scale and
offset, an optional colour table (class maps) and GDAL metadata tags. The file is written to a temporary
path and committed atomically under its key by the store, so a crash never leaves half a COG in the lake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import rasterio
from affine import Affine

from hrlc.lake.store import Store


def write_cog(
    store: Store,
    key: str,
    data: np.ndarray,
    *,
    crs: str | int,
    transform: Affine,
    nodata: float | int | None = 0,
    band_names: Sequence[str] | None = None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
    scales: Sequence[float] | None = None,
    offsets: Sequence[float] | None = None,
    tags: Mapping[str, object] | None = None,
    categorical: bool = False,
    compress: str = "DEFLATE",
) -> str:
    """Write `data` ((bands, y, x) or (y, x)) as a COG under `key`; returns the object's href."""
    if data.ndim == 2:
        data = data[np.newaxis]
    count, height, width = data.shape
    if band_names is not None and len(band_names) != count:
        raise ValueError(f"{len(band_names)} band names for {count} bands")
    crs_value = f"EPSG:{crs}" if isinstance(crs, int) else crs
    predictor = "FLOATING_POINT" if np.issubdtype(data.dtype, np.floating) else "STANDARD"
    blocksize = 512 if min(height, width) >= 512 else 256
    profile = {
        "driver": "COG",
        "width": width,
        "height": height,
        "count": count,
        "dtype": data.dtype,
        "crs": crs_value,
        "transform": transform,
        "nodata": nodata,
        "compress": compress,
        "predictor": predictor if colormap is None else "NO",
        "blocksize": blocksize,
        "overview_resampling": "nearest" if categorical or colormap is not None else "average",
        "num_threads": "ALL_CPUS",
        "bigtiff": "IF_SAFER",
    }
    with store.writing(key) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        if band_names:
            for i, name in enumerate(band_names, start=1):
                dst.set_band_description(i, name)
        if colormap is not None:
            dst.write_colormap(1, dict(colormap))
        if scales is not None:
            dst.scales = tuple(scales)
        if offsets is not None:
            dst.offsets = tuple(offsets)
        if tags:
            dst.update_tags(**{k: str(v) for k, v in tags.items()})
    return store.href(key)


def read_raster(href: str) -> tuple[np.ndarray, dict[str, object]]:
    """Read all bands of a raster (path, /vsis3/ path or URL); returns (data, profile)."""
    with rasterio.open(href) as src:
        return src.read(), dict(src.profile)
