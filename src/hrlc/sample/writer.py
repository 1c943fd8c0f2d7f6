"""Cloud-optimised GeoTIFF writing for the synthetic repository: by rows, converted in background threads.

Why: a 1024 px repository is ~900 single-band COGs; writing them is as costly as computing them, and a
tile's band (10 980² px) is too big to hold whole. GDAL's COG driver only copies a complete dataset, so
`CogWriter` writes rows into an uncompressed GeoTIFF beside the target and `finish()` copies that file to
the COG (the same bytes as a COG made from the array in memory) and deletes it. GDAL compresses with the
GIL released, so `CogPool` runs the copies in threads while the next scene is computed. Whole arrays
(the truth map) go through `write_cog` and GDAL's in-memory dataset, as before. Profile: COG
driver, ZSTD level 1 with horizontal predictor, 512 px blocks; overviews (nearest, or mode for class maps)
only where asked: the scene bands of the repository skip them, which halves the writing time (rio-cogeo
still validates them as COGs, with a warning above 512 px).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.io import DatasetWriter
from rasterio.session import DummySession
from rasterio.windows import Window

from hrlc.sample import _strips

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


def local_env() -> rasterio.env.Env:
    """The GDAL environment of the repository's writes: local files, no cloud session. Around a
    `rasterio.open` called outside any environment, rasterio opens one of its own, and an environment opened
    without a session makes an `AWSSession` (a boto3 session: 8 ms) whenever AWS_ACCESS_KEY_ID is set."""
    return rasterio.env.Env(session=DummySession())


def _creation_options(
    dtype: np.dtype, height: int, width: int, overview_resampling: str, overviews: bool
) -> dict[str, object]:
    options = {k: v for k, v in COG_PROFILE.items() if k != "driver"}
    options["overview_resampling"] = overview_resampling
    if dtype == np.uint8 or dtype == np.int8:
        options["predictor"] = "NO"  # the COG driver's names: YES/STANDARD, FLOATING_POINT, NO
    if not overviews or max(height, width) <= int(COG_PROFILE["blocksize"]):  # type: ignore[call-overload]
        options["overviews"] = "NONE"
    return options


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
    """Write a 2-D array (or (bands, h, w)) held in memory as a COG at `path` (folders created).

    `overviews=False` skips internal overviews (a valid COG still; rio-cogeo only warns above 512 px).
    """
    arr = data if data.ndim == 3 else data[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = arr.shape[1:]
    profile = {"driver": "COG", **_creation_options(arr.dtype, height, width, overview_resampling, overviews)}
    profile.update(
        width=arr.shape[2],
        height=arr.shape[1],
        count=arr.shape[0],
        dtype=arr.dtype.name,
        crs=crs,
        transform=transform,
        nodata=nodata,
    )
    with local_env(), rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
        if colormap is not None:
            dst.write_colormap(1, dict(colormap))
        if tags:
            dst.update_tags(**tags)
    return path


class CogWriter:
    """A single-band COG at `path` of `shape` (height, width), written by rows: the same bytes as
    `write_cog` of the whole array.

    An image of at most `_strips.STRIP_PIXELS` pixels is gathered in memory and written by `write_cog`;
    a larger one goes row by row to the temporary file `<path>.rows.tif`, copied to the COG and deleted.
    `write(rows, row0)` as the rows come, then `close()` (same thread), then `finish()` (any thread).
    (No tags: a GeoTIFF does not keep GDAL metadata items whose names repeat, so tags would not survive
    the temporary file as `write_cog`'s do.)
    """

    def __init__(
        self,
        path: Path,
        shape: tuple[int, int],
        dtype: type | np.dtype,
        *,
        crs: CRS | str,
        transform: Affine,
        nodata: float | None,
        overviews: bool = True,
    ) -> None:
        height, width = shape
        dtype = np.dtype(dtype)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._grid = (crs, transform, nodata)
        self._overviews = overviews
        self._rows_file = path.with_name(path.name + ".rows.tif")
        self._options = _creation_options(dtype, height, width, "nearest", overviews)
        self._whole: np.ndarray | None = None
        self._dst: DatasetWriter | None = None
        if height * width <= _strips.STRIP_PIXELS:
            self._whole = np.zeros(shape, dtype=dtype)
            return
        with local_env():
            self._dst = rasterio.open(
                self._rows_file, "w", driver="GTiff", width=width, height=height, count=1,
                dtype=dtype.name, crs=crs, transform=transform, nodata=nodata, BIGTIFF="IF_SAFER",
            )  # fmt: skip

    def write(self, rows: np.ndarray, row0: int) -> None:
        """Write rows (h, width) starting at row `row0`."""
        if self._whole is not None:
            self._whole[row0 : row0 + rows.shape[0]] = rows
        else:
            assert self._dst is not None
            self._dst.write(rows, 1, window=Window(0, row0, rows.shape[1], rows.shape[0]))

    def close(self) -> None:
        if self._dst is not None:
            self._dst.close()

    def finish(self) -> Path:
        """Write the COG at `path` (closes first if still open)."""
        if self._whole is not None:
            crs, transform, nodata = self._grid
            return write_cog(
                self.path, self._whole, crs=crs, transform=transform, nodata=nodata, overviews=self._overviews
            )
        self.close()
        with local_env():
            rasterio.shutil.copy(self._rows_file, self.path, driver="COG", **self._options)
        self._rows_file.unlink()
        return self.path

    def discard(self) -> None:
        """Close and delete the rows written (after a failure)."""
        self.close()
        self._rows_file.unlink(missing_ok=True)


class CogPool:
    """Finish COGs in background threads; `wait_below(n)` bounds the number of pending ones (disk, memory)."""

    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hrlc-cog")
        self._pending: list[Future[Path]] = []

    def submit(self, finish: Callable[[], Path]) -> None:
        """Run `finish` (e.g. `CogWriter.finish`) in a thread."""
        self._pending.append(self._pool.submit(finish))

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
