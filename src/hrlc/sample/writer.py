"""Cloud-optimised GeoTIFF writing for the synthetic repository, in background threads.

Why: a 1024 px repository is ~900 single-band COGs; writing them is as costly as computing them. GDAL
compresses with the GIL released, so a small thread pool overlaps writing with the numpy work of the
next scene. Profile: COG driver, ZSTD level 1 with horizontal predictor, 512 px blocks; overviews
(nearest, or mode for class maps) only where asked: the scene bands of the repository skip them, which
halves the writing time (rio-cogeo still validates them as COGs, with a warning above 512 px).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

COG_PROFILE: dict[str, object] = {
    "driver": "COG",
    "compress": "ZSTD",
    "level": 1,
    "predictor": 2,
    "blocksize": 512,
    "num_threads": "ALL_CPUS",
    "overview_resampling": "nearest",
    "bigtiff": "NO",
}


def write_cog(
    path: Path,
    data: np.ndarray,
    *,
    crs: CRS | str,
    transform: Affine,
    nodata: float | None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
    tags: Mapping[str, str] | None = None,
    overview_resampling: str = "nearest",
    overviews: bool = True,
) -> Path:
    """Write a 2-D array (or (bands, h, w)) as a COG at `path` (folders created).

    `overviews=False` skips internal overviews (a valid COG still; rio-cogeo only warns above 512 px).
    """
    arr = data if data.ndim == 3 else data[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(COG_PROFILE)
    profile.update(
        width=arr.shape[2],
        height=arr.shape[1],
        count=arr.shape[0],
        dtype=arr.dtype.name,
        crs=crs,
        transform=transform,
        nodata=nodata,
        overview_resampling=overview_resampling,
    )
    if arr.dtype == np.uint8 or arr.dtype == np.int8:
        profile["predictor"] = "NO"  # the COG driver's names: YES/STANDARD, FLOATING_POINT, NO
    if not overviews or max(arr.shape[1:]) <= int(profile["blocksize"]):  # type: ignore[call-overload]
        profile["overviews"] = "NONE"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
        if colormap is not None:
            dst.write_colormap(1, dict(colormap))
        if tags:
            dst.update_tags(**tags)
    return path


class CogPool:
    """Write COGs in background threads; `wait_below(n)` bounds the number of pending writes (memory)."""

    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hrlc-cog")
        self._pending: list[Future[Path]] = []

    def submit(self, path: Path, data: np.ndarray, **kwargs: object) -> None:
        self._pending.append(self._pool.submit(write_cog, path, data, **kwargs))  # type: ignore[arg-type]

    def wait_below(self, n: int) -> None:
        """Block until fewer than `n` writes are pending; re-raise the first failed write."""
        pending = []
        for f in self._pending:
            if f.done():
                f.result()
            else:
                pending.append(f)
        self._pending = pending
        while len(self._pending) >= max(n, 1):
            self._pending.pop(0).result()

    def close(self) -> None:
        try:
            for f in self._pending:
                f.result()
        finally:
            self._pending.clear()
            self._pool.shutdown(wait=True)

    def __enter__(self) -> CogPool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            for f in self._pending:
                f.cancel()
        self.close()
