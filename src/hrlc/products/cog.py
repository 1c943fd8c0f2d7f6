"""Writer of Cloud Optimized GeoTIFFs into the Data Lake (GDAL's COG driver through rasterio).

Every raster product of hrlc goes through `write_cog` (or `cog_blocks`): tiled 512 px, DEFLATE with predictor,
internal overviews (nearest for class maps, average for continuous data), nodata set, band descriptions, scale
and offset, an optional colour table (class maps) and GDAL metadata tags. The file is written to a temporary
path and committed atomically under its key by the store, so a crash never leaves half a COG in the lake.

Block by block: the raster is first written window by window into an uncompressed GeoTIFF beside the
temporary path, which GDAL then translates into the COG (overviews and tiles made from that file through GDAL's
block cache, capped meanwhile at `CACHE_BYTES`), so no step holds the whole raster in memory. That intermediate
file is striped, one row a strip, and band-interleaved, like GDAL's in-memory datasets: from a tiled one GDAL
computes every average overview from the full resolution instead of each from the previous level, and the
overviews of 4x and coarser differ by ±1 in a few % of their values. `write_cog` of a
dask array computes and writes a few chunks at a time (`chunk_regions`); `cog_blocks` is the open target for a
caller that writes several COGs from one computation. The bytes are those GDAL's COG driver writes from the
whole array at once.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import dask.system
import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.io import DatasetWriter
from rasterio.session import DummySession  # tmp is local: no AWSSession (8 ms) when AWS keys are set
from rasterio.windows import Window

from hrlc.lake.store import Store

CACHE_BYTES = 64 * 2**20  # GDAL's block cache while a COG is written by blocks (GDAL's default: 5 % of RAM)


LICENSE = "CC-BY-4.0"  # of every product hrlc makes (the product collections' licence too)


def provenance_tags(processor: str) -> dict[str, str]:
    """The tags every GeoTIFF of hrlc carries besides its `hrlc_product`: the hrlc version, the processor and
    its version that made it (e.g. "classification 0.1.0") and the licence."""
    from hrlc import __version__

    return {"hrlc_version": __version__, "hrlc_processor": processor, "license": LICENSE}


class CogBlocks:
    """A COG being written: ``target[bands, rows, cols] = block`` (slices) writes a window of bands
    (``target[rows, cols]`` for a one-band raster); it is also a `dask.array.store` target."""

    def __init__(self, dst: DatasetWriter):
        self._dst = dst
        self.shape = (dst.count, dst.height, dst.width)

    def __setitem__(self, key: tuple[slice, ...], block: np.ndarray) -> None:
        if len(key) == 2:
            key, block = (slice(0, 1), *key), block[np.newaxis]
        bands, rows, cols = (range(*k.indices(n)) for k, n in zip(key, self.shape, strict=True))
        window = Window(cols.start, rows.start, len(cols), len(rows))
        self._dst.write(block, indexes=[b + 1 for b in bands], window=window)

    def update_tags(self, **tags: object) -> None:
        """Add GDAL metadata tags (dataset domain) to the COG: known only once its pixels are written."""
        self._dst.update_tags(**{k: str(v) for k, v in tags.items()})


@contextlib.contextmanager
def cog_blocks(
    store: Store,
    key: str,
    *,
    count: int,
    height: int,
    width: int,
    dtype: np.dtype[Any] | type | str,
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
    cache_bytes: int = CACHE_BYTES,
) -> Iterator[CogBlocks]:
    """A COG under `key` written block by block into the target this yields; committed when the block ends
    without error (pixels never written are `nodata`, or 0). Options as in `write_cog`; GDAL's block cache
    (process-wide) is capped at `cache_bytes` meanwhile, so the blocks GDAL keeps stay few."""
    if band_names is not None and len(band_names) != count:
        raise ValueError(f"{len(band_names)} band names for {count} bands")
    dtype = np.dtype(dtype)
    predictor = "FLOATING_POINT" if np.issubdtype(dtype, np.floating) else "STANDARD"
    cog_options = {
        "compress": compress,
        "predictor": predictor if colormap is None else "NO",
        "blocksize": 512 if min(height, width) >= 512 else 256,
        "overview_resampling": "nearest" if categorical or colormap is not None else "average",
        "num_threads": "ALL_CPUS",
        "bigtiff": "IF_SAFER",
    }
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": dtype,
        "crs": f"EPSG:{crs}" if isinstance(crs, int) else crs,
        "transform": transform,
        "nodata": nodata,
        "interleave": "band",
        "blockysize": 1,  # striped, one row a strip: the overviews of an in-memory array (module docstring)
        "bigtiff": "IF_SAFER",
    }
    with store.writing(key) as tmp, rasterio.Env(session=DummySession(), GDAL_CACHEMAX=cache_bytes):
        blocks = Path(f"{tmp}.blocks.tif")  # beside the temporary file: the lake's listing skips both
        try:
            with rasterio.open(blocks, "w", **profile) as dst:
                if (
                    colormap is not None
                ):  # before any pixel: libtiff refuses a palette once strips are written
                    dst.write_colormap(1, dict(colormap))
                yield CogBlocks(dst)
                if band_names:
                    for i, name in enumerate(band_names, start=1):
                        dst.set_band_description(i, name)
                if scales is not None:
                    dst.scales = tuple(scales)
                if offsets is not None:
                    dst.offsets = tuple(offsets)
                if tags:
                    dst.update_tags(**{k: str(v) for k, v in tags.items()})
            rasterio.shutil.copy(blocks, tmp, driver="COG", **cog_options)
        finally:
            blocks.unlink(missing_ok=True)


def write_cog(
    store: Store,
    key: str,
    data: np.ndarray | da.Array,
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
    """Write `data` ((bands, y, x) or (y, x); a dask array is computed and written chunk by chunk) as a COG
    under `key`; returns the object's href."""
    if data.ndim == 2:
        data = data[np.newaxis]
    count, height, width = data.shape
    with cog_blocks(
        store,
        key,
        count=count,
        height=height,
        width=width,
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        band_names=band_names,
        colormap=colormap,
        scales=scales,
        offsets=offsets,
        tags=tags,
        categorical=categorical,
        compress=compress,
    ) as target:
        if isinstance(data, da.Array):
            for rows, cols in chunk_regions(data):
                target[:, rows, cols] = data[:, rows, cols].compute()
        else:
            target[:, :, :] = data
    return store.href(key)


def chunk_regions(array: da.Array, at_once: int | None = None) -> Iterator[tuple[slice, slice]]:
    """The (rows, cols) regions in which to compute `array` (..., y, x): `at_once` neighbouring chunks of a row
    of chunks each (default: as many as dask has threads), row by row.

    Computed region by region, a dask array needs the memory of `at_once` chunks (and their inputs): in one
    go, dask's threaded scheduler starts every task that is ready, so it reads the inputs of all the chunks
    while the first ones are being computed.
    """
    at_once = at_once or dask.config.get("num_workers", None) or dask.system.CPU_COUNT
    ys = np.cumsum((0, *array.chunks[-2])).tolist()
    xs = np.cumsum((0, *array.chunks[-1])).tolist()
    for y0, y1 in itertools.pairwise(ys):
        for j in range(0, len(xs) - 1, at_once):
            yield slice(y0, y1), slice(xs[j], xs[min(j + at_once, len(xs) - 1)])


def read_raster(href: str) -> tuple[np.ndarray, dict[str, object]]:
    """Read all bands of a raster (path, /vsis3/ path or URL); returns (data, profile)."""
    with rasterio.open(href) as src:
        return src.read(), dict(src.profile)
