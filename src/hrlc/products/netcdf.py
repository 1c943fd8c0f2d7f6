"""Writer and reader of the yearly feature stack NetCDF (`features/{year}/features_optical_*_{year}.nc`).

The classifier reads its inputs from one self-describing file per AOI and year (spec §3.2.1 "Feature
Stacks"): every band, index and annual statistic of :func:`hrlc.chain.features.feature_stack`, with enough
metadata for any CF-aware tool (GDAL, QGIS, xarray, Panoply, compliance-checker) to place it on the map.

File layout (NetCDF-4/HDF5, CF-1.8, ACDD-1.3)
---------------------------------------------
- dims ``period`` (12 months or 4 seasons), ``y``, ``x``; variables ``(period, y, x)`` or ``(y, x)``, float32,
  ``_FillValue`` NaN, zlib-compressed with shuffle, chunked ``(1, <=512, <=512)``.
- ``x``/``y``: pixel-centre coordinates from the affine transform (``projection_x_coordinate`` /
  ``projection_y_coordinate`` in the CRS's unit, normally ``m``; ``longitude``/``latitude`` for a
  geographic CRS). Only north-up grids (no rotation) are supported.
- ``crs``: the grid-mapping variable (``pyproj.CRS.to_cf()``, plus ``crs_wkt``, ``spatial_ref`` and GDAL's
  ``GeoTransform`` so the transform round-trips exactly); every data variable has ``grid_mapping = "crs"``.
- ``period_label(period)``: string auxiliary coordinate with the period labels (``"01".."12"``,
  ``"season1".."season4"``). CF requires coordinate variables to be numeric, so the labels are a CF
  *label* variable (CF §6.1) referenced from each variable's ``coordinates`` attribute; it carries
  ``month_bounds`` (first and last calendar month of each period, flattened pairs). With ``year`` the file
  also gets a CF ``time(period)`` coordinate (period middle) with ``time_bnds``.
- global attributes: ``Conventions = "CF-1.8, ACDD-1.3"``, ``title``, ``summary``, ``institution``,
  ``source``, ``history``, ``product_version``, ``date_created``, ``geospatial_*`` bounds (WGS 84) and the
  caller's ``attrs`` (which win over the defaults, except ``Conventions``).

Writing: :func:`write_feature_stack` writes a stack held in memory; :func:`feature_stack_writer` makes the same
file block by block (the metadata from the stack of one pixel, then each block's variables into their windows),
so a stack larger than memory is written with the memory of one block. Both define the file through xarray
(``Dataset.dump_to_store``: the attributes, encoding and coordinates ``to_netcdf`` writes) and write the
gridded variables' pixels by slices; blocks aligned with the chunks write whole chunks.

:func:`read_feature_stack` gives back a Dataset with the ``period`` coordinate holding the labels again and
``crs`` as a coordinate; :func:`grid_of` recovers ``(crs, transform)`` from it.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import itertools
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array
import dask.system
import h5py
import numpy as np
import xarray as xr
from affine import Affine
from isal import isal_zlib
from pyproj import CRS
from pyproj.transformer import Transformer

from hrlc import __version__

__all__ = [
    "CHUNK_PX",
    "CONVENTIONS",
    "GRID_MAPPING",
    "FeatureStackReader",
    "FeatureStackWriter",
    "feature_stack_writer",
    "grid_of",
    "read_feature_stack",
    "write_feature_stack",
]

CONVENTIONS = "CF-1.8, ACDD-1.3"
GRID_MAPPING = "crs"
PERIOD_LABEL = "period_label"
CHUNK_PX = 512  # chunks of the gridded variables: (1, 512, 512) or (512, 512), smaller for a smaller grid
_ALL = slice(None)
#: significant bits of the float features' mantissa kept in the file (netCDF-C's BitRound quantization, netcdf4
#: engine; the file says so in each variable's `_QuantizeBitRoundNumberOfSignificantBits`): relative error
#: <= 2**-13 (1.2e-4), which for a reflectance is at most the 1e-4 step of the inputs it comes from; the zeroed
#: low bits make the stack 43 % smaller and 36 % faster to compress (docs/performance.md, "Features")
KEEP_BITS = 12

_STORES: dict[str, type[Any]] = {
    "netcdf4": xr.backends.NetCDF4DataStore,
    "h5netcdf": xr.backends.H5NetCDFStore,
}

_DEFAULT_ATTRS: dict[str, str] = {
    "title": "ESA CCI HRLC feature stack",
    "summary": (
        "Yearly stack of gap-filled surface reflectance composites, normalized-difference indices and their "
        "annual statistics, input of the ESA CCI High Resolution Land Cover classification."
    ),
    "institution": "ESA Climate Change Initiative, High Resolution Land Cover project (CCI HRLC)",
    "source": "hrlc feature extraction from optical composites",
    "project": "ESA Climate Change Initiative - High Resolution Land Cover (CCI HRLC)",
    "keywords": "land cover, surface reflectance, NDVI, time series, Sentinel-2, Landsat",
    "license": "ESA CCI Data Policy: free and open access",
    "standard_name_vocabulary": "CF Standard Name Table v93",
    "naming_authority": "esa.cci.hrlc",
    "cdm_data_type": "Grid",
}


def _crs_of(crs: str | int | CRS) -> CRS:
    if isinstance(crs, int):
        return CRS.from_epsg(crs)
    return CRS.from_user_input(crs)


def _month_bounds(labels: list[str]) -> list[int] | None:
    """First and last calendar month of each period, flattened; None for unknown labels."""
    out: list[int] = []
    for lab in labels:
        if lab.isdigit() and 1 <= int(lab) <= 12:
            out += [int(lab), int(lab)]
        elif lab.startswith("season") and lab[6:].isdigit() and 1 <= int(lab[6:]) <= 4:
            q = int(lab[6:])
            out += [3 * q - 2, 3 * q]
        else:
            return None
    return out


def _xy_attrs(crs: CRS) -> tuple[dict[str, str], dict[str, str]]:
    if crs.is_geographic:
        return (
            {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"},
            {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"},
        )
    unit = crs.axis_info[0].unit_name if crs.axis_info else "metre"
    units = "m" if unit in ("metre", "meter") else unit
    return (
        {
            "standard_name": "projection_x_coordinate",
            "long_name": "x coordinate of projection",
            "units": units,
            "axis": "X",
        },
        {
            "standard_name": "projection_y_coordinate",
            "long_name": "y coordinate of projection",
            "units": units,
            "axis": "Y",
        },
    )


def _geospatial_attrs(crs: CRS, transform: Affine, ny: int, nx: int) -> dict[str, Any]:
    """ACDD geospatial bounds in WGS 84 (densified edges, so the box contains the whole grid)."""
    left, top = transform.c, transform.f
    right, bottom = left + transform.a * nx, top + transform.e * ny
    try:
        to_wgs84 = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
        west, south, east, north = to_wgs84.transform_bounds(
            min(left, right), min(top, bottom), max(left, right), max(top, bottom), densify_pts=21
        )
    except Exception:  # noqa: BLE001 - a CRS without a WGS 84 path only loses the optional ACDD bounds
        return {}
    return {
        "geospatial_lat_min": float(south),
        "geospatial_lat_max": float(north),
        "geospatial_lon_min": float(west),
        "geospatial_lon_max": float(east),
        "geospatial_lat_units": "degrees_north",
        "geospatial_lon_units": "degrees_east",
        "geospatial_bounds_crs": "EPSG:4326",
    }


def _time_coords(labels: list[str], year: int) -> dict[str, Any]:
    """CF ``time(period)`` (middle of each period) and ``time_bnds(period, nv)``, days since 1 January."""
    months = _month_bounds(labels)
    if months is None:
        raise ValueError(f"cannot place periods {labels} on the calendar of {year}")
    start = dt.date(year, 1, 1)
    bounds = []
    for first, last in zip(months[::2], months[1::2], strict=True):
        lo = (dt.date(year, first, 1) - start).days
        hi = (dt.date(year, last, calendar.monthrange(year, last)[1]) - start).days + 1
        bounds.append((lo, hi))
    b = np.array(bounds, dtype=np.float64)
    units = f"days since {year}-01-01 00:00:00"
    time = xr.Variable(
        ("period",),
        b.mean(axis=1),
        {
            "standard_name": "time",
            "long_name": "middle of the compositing period",
            "units": units,
            "calendar": "standard",
            "bounds": "time_bnds",
        },
    )
    time_bnds = xr.Variable(("period", "nv"), b, {"units": units, "calendar": "standard"})
    return {"time": time, "time_bnds": time_bnds}  # time -> coordinate; time_bnds -> bounds variable


class FeatureStackWriter:
    """A feature stack NetCDF open for writing, made by :func:`feature_stack_writer`: every variable exists with
    its attributes, chunking and compression; its pixels are written window by window.

    ``write_variable(name, values, rows, cols)`` writes the ``(y, x)`` window `rows`, `cols` of one variable
    (every period at once); ``write(block, rows, cols)`` every gridded variable of the Dataset `block`. Every
    pixel of every variable must be written exactly once.

    The file was defined by netCDF-C (through xarray) and closed; its pixels go through h5py. A window aligned
    with the chunks (multiples of :data:`CHUNK_PX`, or the grid's edge) writes whole chunks with HDF5's direct
    chunk write: each chunk is quantized (netCDF-C's BitRound, when the variable's
    ``_QuantizeBitRoundNumberOfSignificantBits`` says so), shuffled and deflated by the file's own filter
    pipeline, on `threads` threads (ISA-L's deflate and numpy release the GIL), and the compressed bytes are written by
    one thread at a time; netCDF-C compresses every chunk on the one thread that calls it. Other windows are
    quantized and written through HDF5's filters. At most `pending` variables wait for their chunks at once
    (memory: that many blocks of one variable); 0 writes each variable before `write_variable` returns.
    The writer holds each array it is given until written: do not modify it.
    """

    def __init__(self, h5: Any, variables: Mapping[str, tuple[str, ...]], height: int, width: int, *,
                 pending: int = 0, threads: int | None = None):  # fmt: skip
        self._h5 = h5
        self._dims = dict(variables)
        self._shape = (height, width)
        self._datasets = {n: h5[n] for n in self._dims}
        self._codecs = {n: _ChunkCodec.of(d) for n, d in self._datasets.items()}
        self._written = dict.fromkeys(self._dims, 0)
        self._lock = threading.Lock()  # HDF5 calls, one at a time
        self._pending = max(0, int(pending))
        self._pool = ThreadPoolExecutor(
            max_workers=threads or dask.system.CPU_COUNT, thread_name_prefix="hrlc-netcdf-chunk"
        )
        self._waiting: deque[list[Future[None]]] = deque()  # the chunks of each variable in flight

    @property
    def variables(self) -> list[str]:
        """The gridded variables of the file, in file order."""
        return list(self._dims)

    def write_variable(self, name: str, values: xr.DataArray | np.ndarray, rows: slice, cols: slice) -> None:
        """Write the window `rows`, `cols` of variable `name`: a DataArray (transposed to the file's dims) or an
        array already in the file's dim order (``(period, y, x)`` or ``(y, x)``), of the window's shape."""
        dims = self._dims[name]
        dset, codec = self._datasets[name], self._codecs[name]
        if isinstance(values, xr.DataArray):
            values = values.transpose(*dims).values
        data = np.asarray(values, dtype=dset.dtype)
        r = range(*rows.indices(self._shape[0]))
        c = range(*cols.indices(self._shape[1]))
        key = tuple(
            slice(r.start, r.stop) if d == "y" else slice(c.start, c.stop) if d == "x" else slice(None)
            for d in dims
        )
        expected = tuple(
            len(r) if d == "y" else len(c) if d == "x" else int(dset.shape[i]) for i, d in enumerate(dims)
        )
        if data.shape != expected:
            raise ValueError(f"{name}: a window of shape {expected} got values of shape {data.shape}")
        starts = tuple(k.start or 0 for k in key)
        chunks = codec.chunks_of(starts, data.shape) if codec.direct else None
        if chunks is None:  # not aligned with the chunks: HDF5 filters them (read-modify-write)
            futures = [self._pool.submit(self._write_window, dset, codec, key, data)]
        else:
            futures = [
                self._pool.submit(self._write_chunk, dset, codec, data, offset, roi) for offset, roi in chunks
            ]
        self._waiting.append(futures)
        while len(self._waiting) > self._pending:
            for f in self._waiting.popleft():
                f.result()
        self._written[name] += len(r) * len(c)

    def write(self, block: xr.Dataset, rows: slice = _ALL, cols: slice = _ALL) -> None:
        """Write the window `rows`, `cols` of every gridded variable of the file from `block` (which must hold
        them all, on the window)."""
        for name in self._dims:
            self.write_variable(name, block[name], rows, cols)

    def _write_chunk(self, dset: Any, codec: _ChunkCodec, data: np.ndarray, offset: tuple[int, ...],
                     roi: tuple[slice, ...]) -> None:  # fmt: skip
        payload = codec.encode(data[roi])
        with self._lock:
            dset.id.write_direct_chunk(offset, payload)

    def _write_window(self, dset: Any, codec: _ChunkCodec, key: tuple[slice, ...], data: np.ndarray) -> None:
        values = codec.quantize(data)
        with self._lock:
            dset[key] = values

    def _stop(self) -> None:
        """Wait until every write is done (the file may then be closed); the first error is raised."""
        try:
            while self._waiting:
                for f in self._waiting.popleft():
                    f.result()
        finally:
            for futures in self._waiting:
                for f in futures:
                    f.cancel()
            self._waiting.clear()
            self._pool.shutdown(wait=True)

    def _finish(self) -> None:
        self._stop()
        total = self._shape[0] * self._shape[1]
        wrong = [n for n, done in self._written.items() if done != total]
        if wrong:
            raise ValueError(
                f"feature stack incomplete: {wrong} not written exactly once over {self._shape} px"
            )


_H5Z_DEFLATE, _H5Z_SHUFFLE = 1, 2  # HDF5's filter ids


def _isal_level(zlib_level: int) -> int:
    """ISA-L's deflate level (0..3) for a zlib level (1..9). ISA-L (Intel's igzip, python-isal) writes standard
    zlib streams, which HDF5's deflate filter and every reader decode; its level 1 compresses a feature chunk as
    much as zlib's level 1 in a tenth of the time (docs/performance.md, "Feature stacks on all cores")."""
    return 0 if zlib_level <= 0 else 1 if zlib_level == 1 else 2 if zlib_level <= 5 else 3


@dataclass(frozen=True)
class _ChunkCodec:
    """What HDF5 would do to a chunk of one dataset on write, done in numpy and ISA-L: netCDF-C's BitRound
    quantization (`keep_bits` significant mantissa bits of a float32; the variable's
    ``_QuantizeBitRoundNumberOfSignificantBits``), then the dataset's filter pipeline (shuffle, deflate) in its
    order. `direct` is False for a pipeline with any other filter: its chunks then go through HDF5."""

    chunk: tuple[int, ...]
    shape: tuple[int, ...]
    itemsize: int
    fill: Any
    filters: tuple[tuple[int, int], ...]  # (filter id, deflate level or 0), in pipeline order
    keep_bits: int | None
    direct: bool

    @classmethod
    def of(cls, dset: Any) -> _ChunkCodec:
        plist = dset.id.get_create_plist()
        filters = []
        for i in range(plist.get_nfilters()):
            code, _flags, values, _name = plist.get_filter(i)
            filters.append((int(code), int(values[0]) if code == _H5Z_DEFLATE and len(values) else 0))
        keep = dset.attrs.get("_QuantizeBitRoundNumberOfSignificantBits")
        fill = dset.fillvalue
        return cls(
            chunk=tuple(dset.chunks or dset.shape),
            shape=tuple(dset.shape),
            itemsize=dset.dtype.itemsize,
            fill=fill,
            filters=tuple(filters),
            keep_bits=int(np.asarray(keep).ravel()[0])
            if keep is not None and dset.dtype == np.float32
            else None,
            direct=dset.chunks is not None and all(f in (_H5Z_DEFLATE, _H5Z_SHUFFLE) for f, _ in filters),
        )

    def chunks_of(
        self, starts: tuple[int, ...], shape: tuple[int, ...]
    ) -> list[tuple[tuple[int, ...], tuple[slice, ...]]] | None:
        """The whole chunks a window at `starts` of `shape` covers, as (chunk offset in the dataset, the
        chunk's part of the window); None if the window cuts a chunk (an edge of the dataset may)."""
        for s, n, c, total in zip(starts, shape, self.chunk, self.shape, strict=True):
            if s % c or (n % c and s + n != total):
                return None
        return [
            (tuple(s + o for s, o in zip(starts, offset, strict=True)),
             tuple(slice(o, min(o + c, n)) for o, c, n in zip(offset, self.chunk, shape, strict=True)))
            for offset in itertools.product(*(range(0, n, c) for n, c in zip(shape, self.chunk, strict=True)))
        ]  # fmt: skip

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """netCDF-C's BitRound of float32 values (nc4var.c): add half of the dropped bits' weight, then zero
        them (round half up on the magnitude; NaN stays NaN). Others as they are."""
        if self.keep_bits is None:
            return values
        drop = 23 - self.keep_bits  # explicit mantissa bits of a float32: 23
        bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
        mask = np.uint32((0xFFFFFFFF << drop) & 0xFFFFFFFF)
        half = np.uint32((~int(mask) & 0xFFFFFFFF) & (int(mask) >> 1))
        return ((bits + half) & mask).view(np.float32)

    def decode(self, payload: bytes, skipped: int, dtype: np.dtype) -> np.ndarray:
        """The chunk of `payload` as HDF5 stored it (`skipped`: the filter mask, bit i set when filter i of the
        pipeline was not applied), back through the filters in reverse order."""
        out: bytes = payload
        for i in reversed(range(len(self.filters))):
            if skipped & (1 << i):
                continue
            code, _level = self.filters[i]
            if code == _H5Z_SHUFFLE:
                out = np.frombuffer(out, np.uint8).reshape(self.itemsize, -1).T.tobytes()
            else:
                out = isal_zlib.decompress(out)
        return np.frombuffer(out, dtype=dtype).reshape(self.chunk)

    def encode(self, values: np.ndarray) -> bytes:
        """One chunk's bytes as HDF5 stores them: `values` (at most a chunk; padded with the fill value to a
        whole one) quantized and passed through the filters."""
        if values.shape != self.chunk:
            whole = np.full(self.chunk, self.fill, dtype=values.dtype)
            whole[tuple(slice(0, n) for n in values.shape)] = values
            values = whole
        out = np.ascontiguousarray(
            self.quantize(values)
        ).tobytes()  # a copy: 1 MB, far less than deflating it
        for code, level in self.filters:
            if code == _H5Z_SHUFFLE:
                out = np.frombuffer(out, np.uint8).reshape(-1, self.itemsize).T.tobytes()
            else:
                out = isal_zlib.compress(out, _isal_level(level))
        return out


class FeatureStackReader:
    """Windows of a feature stack's gridded variables, as one ``(n_layers, h, w)`` float32 matrix, read with
    HDF5's direct chunk read and decompressed on `threads` threads (netCDF-C and h5py decompress every chunk
    on the one thread that calls them, under one lock). `variables` gives the order: each ``(period, y, x)``
    variable is its periods in file order, each ``(y, x)`` variable one layer (`chain.features.to_matrix`'s
    layout when given in `chain.features.matrix_variables` order). A chunk the writer never wrote reads as
    the fill value; a variable with other filters than shuffle and deflate is read through HDF5.
    Memory: the matrix, and one decompressed chunk per thread."""

    def __init__(self, path: Path | str, variables: Sequence[str], *, threads: int | None = None):
        self._h5 = h5py.File(path, "r", rdcc_nbytes=0)
        try:
            self._datasets = [self._h5[v] for v in variables]
        except KeyError as e:
            self._h5.close()
            raise ValueError(f"{path}: no variable {e}") from None
        self._codecs = [_ChunkCodec.of(d) for d in self._datasets]
        self._lock = threading.Lock()  # HDF5 calls, one at a time
        self._pool = ThreadPoolExecutor(
            max_workers=threads or dask.system.CPU_COUNT, thread_name_prefix="hrlc-netcdf-read"
        )
        self.layers = sum(d.shape[0] if d.ndim == 3 else 1 for d in self._datasets)

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The ``(n_layers, h, w)`` float32 matrix of the window `rows`, `cols` (slices with start and stop)."""
        h, w = rows.stop - rows.start, cols.stop - cols.start
        out = np.empty((self.layers, h, w), dtype=np.float32)
        futures = []
        first = 0
        for dset, codec in zip(self._datasets, self._codecs, strict=True):
            n = dset.shape[0] if dset.ndim == 3 else 1
            target = out[first : first + n] if dset.ndim == 3 else out[first : first + 1]
            first += n
            if not codec.direct:
                futures.append(self._pool.submit(self._read_window, dset, rows, cols, target))
                continue
            cy, cx = codec.chunk[-2:]
            for r0 in range(rows.start - rows.start % cy, rows.stop, cy):
                for c0 in range(cols.start - cols.start % cx, cols.stop, cx):
                    for p in range(n) if dset.ndim == 3 else [None]:
                        futures.append(
                            self._pool.submit(self._read_chunk, dset, codec, p, r0, c0, rows, cols, target)
                        )
        for f in futures:
            f.result()
        return out

    def _read_chunk(self, dset: Any, codec: _ChunkCodec, period: int | None, r0: int, c0: int, rows: slice,
                    cols: slice, target: np.ndarray) -> None:  # fmt: skip
        offset = (r0, c0) if period is None else (period, r0, c0)
        with self._lock:
            stored = dset.id.get_chunk_info_by_coord(offset).byte_offset is not None
            skipped, payload = dset.id.read_direct_chunk(offset) if stored else (0, b"")
        cy, cx = codec.chunk[-2:]
        ys = slice(max(rows.start, r0), min(rows.stop, r0 + cy))
        xs = slice(max(cols.start, c0), min(cols.stop, c0 + cx))
        layer = target[0 if period is None else period]
        part = (
            slice(ys.start - rows.start, ys.stop - rows.start),
            slice(xs.start - cols.start, xs.stop - cols.start),
        )
        if not stored:
            layer[part] = codec.fill
            return
        chunk = codec.decode(payload, skipped, dset.dtype)
        layer[part] = chunk.reshape(cy, cx)[ys.start - r0 : ys.stop - r0, xs.start - c0 : xs.stop - c0]

    def _read_window(self, dset: Any, rows: slice, cols: slice, target: np.ndarray) -> None:
        with self._lock:
            values = dset[..., rows, cols]
        target[...] = values.reshape(target.shape)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._h5.close()

    def __enter__(self) -> FeatureStackReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def feature_stack_writer(
    path: Path | str,
    like: xr.Dataset,
    *,
    height: int,
    width: int,
    crs: str | int | CRS,
    transform: Affine,
    attrs: Mapping[str, Any] | None = None,
    year: int | None = None,
    engine: str = "netcdf4",
    complevel: int = 1,
    keep_bits: int | None = KEEP_BITS,
    pending: int = 0,
) -> Iterator[FeatureStackWriter]:
    """A feature stack of `height` x `width` px created at `path` (overwritten) and written block by block.

    `like` gives the variables (names, dims, dtypes, attributes, order) and the ``period`` labels; its pixels and
    its ``y``/``x`` size are ignored, so the stack of one pixel will do (e.g. ``feature_stack`` of a 1x1
    composite). Its non-gridded variables are written as they are. The file, its metadata, chunking and
    compression are those of :func:`write_feature_stack` (other arguments as there). Memory: the metadata and
    the caller's blocks (and `pending` variables whose chunks are being compressed, see `FeatureStackWriter`).
    The file is complete when the block ends without error; ValueError then if some pixel was never written.
    """
    crs_obj = _crs_of(crs)
    transform = Affine(*list(transform)[:6])
    if transform.b != 0 or transform.d != 0:
        raise ValueError("rotated grids are not supported: the transform must be north-up")
    ny, nx = int(height), int(width)
    xs = transform.c + transform.a * (np.arange(nx) + 0.5)
    ys = transform.f + transform.e * (np.arange(ny) + 0.5)

    out = like.drop_vars([v for v in ("x", "y", GRID_MAPPING, "spatial_ref") if v in like.variables])
    gridded = {str(n): da for n, da in out.data_vars.items() if {"y", "x"} <= set(da.dims)}
    placeholders = {  # lazy, never computed: xarray defines the variables, the blocks fill them
        name: xr.Variable(
            da.dims,
            dask.array.empty(
                tuple(ny if d == "y" else nx if d == "x" else int(out.sizes[d]) for d in da.dims),
                dtype=da.dtype,
                chunks=-1,
            ),
            da.attrs,
        )
        for name, da in gridded.items()
    }
    out = xr.Dataset(  # `like`'s variables in its order; coordinates on y/x other than x, y are dropped
        {name: placeholders.get(str(name), da.variable) for name, da in out.data_vars.items()},
        coords={k: c.variable for k, c in out.coords.items() if not {"y", "x"} & set(c.dims)},
    )
    x_attrs, y_attrs = _xy_attrs(crs_obj)
    out = out.assign_coords(x=("x", xs, x_attrs), y=("y", ys, y_attrs))

    labels: list[str] = []
    if "period" in out.dims:
        labels = [
            str(v)
            for v in (like["period"].values if "period" in like.coords else range(like.sizes["period"]))
        ]
        out = out.drop_vars("period", errors="ignore")
        label_attrs: dict[str, Any] = {
            "long_name": "compositing period",
            "comment": "01..12 = calendar months; season1..season4 = calendar quarters Jan-Mar, Apr-Jun, "
            "Jul-Sep, Oct-Dec",
        }
        months = _month_bounds(labels)
        if months is not None:
            label_attrs["month_bounds"] = np.array(months, dtype=np.int32)
            label_attrs["month_bounds_comment"] = "first and last calendar month of each period, in pairs"
        out = out.assign_coords({PERIOD_LABEL: ("period", np.array(labels, dtype=object), label_attrs)})
        if year is not None:
            tc = _time_coords(labels, year)
            out = out.assign_coords(time=tc["time"])
            out["time_bnds"] = tc["time_bnds"]

    cf = crs_obj.to_cf()
    wkt = crs_obj.to_wkt()
    gm_attrs = {
        **cf,
        "crs_wkt": cf.get("crs_wkt", wkt),
        "spatial_ref": cf.get("crs_wkt", wkt),
        "GeoTransform": " ".join(repr(float(v)) for v in transform.to_gdal()),
    }
    out[GRID_MAPPING] = xr.DataArray(np.int32(0), attrs=gm_attrs)

    encoding: dict[str, dict[str, Any]] = {}
    for name in list(out.data_vars):
        da = out[name]
        if not {"y", "x"} <= set(da.dims):  # crs, time_bnds
            continue
        if np.issubdtype(da.dtype, np.floating):
            da = da.astype(np.float32, copy=False)
        da.attrs = {k: v for k, v in da.attrs.items() if k not in ("_FillValue", "missing_value")}
        da.attrs["grid_mapping"] = GRID_MAPPING
        da.encoding = {}
        out[name] = da
        chunks = tuple(
            1 if d == "period" else min(CHUNK_PX, int(out.sizes[d])) if d in ("y", "x") else int(out.sizes[d])
            for d in da.dims
        )
        enc: dict[str, Any] = {"zlib": True, "complevel": complevel, "shuffle": True}
        if chunks:
            enc["chunksizes"] = chunks
        if np.issubdtype(da.dtype, np.floating):
            enc["_FillValue"] = np.float32(np.nan)
            enc["dtype"] = "float32"
            if keep_bits is not None and engine == "netcdf4":
                enc["quantize_mode"] = "BitRound"
                enc["significant_digits"] = keep_bits
        encoding[str(name)] = enc
    for name in ("x", "y", "time", "time_bnds"):
        if name in out.variables:
            encoding[name] = {"_FillValue": None}

    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    global_attrs: dict[str, Any] = {
        **_DEFAULT_ATTRS,
        "product_version": __version__,
        "date_created": now,
        "history": f"{now} written by hrlc {__version__} (hrlc.products.netcdf.write_feature_stack)",
        **_geospatial_attrs(crs_obj, transform, ny, nx),
        "geospatial_x_resolution": f"{abs(transform.a):g} {x_attrs['units']}",
        "geospatial_y_resolution": f"{abs(transform.e):g} {y_attrs['units']}",
    }
    if year is not None:
        global_attrs["time_coverage_start"] = f"{year}-01-01T00:00:00Z"
        global_attrs["time_coverage_end"] = f"{year}-12-31T23:59:59Z"
        global_attrs["time_coverage_duration"] = "P1Y"
    for key, value in (attrs or {}).items():
        if value is None:
            continue
        if key == "history":
            global_attrs["history"] = f"{value}\n{global_attrs['history']}"
        else:
            global_attrs[key] = value
    global_attrs["Conventions"] = CONVENTIONS
    out.attrs = global_attrs

    if engine not in _STORES:
        raise ValueError(f"unknown engine {engine!r}: one of {sorted(_STORES)}")
    store = _STORES[engine].open(Path(path), mode="w", format="NETCDF4")
    try:
        # what Dataset.to_netcdf does, except the data of the (lazy) gridded variables, which the blocks write
        out.dump_to_store(store, encoding=encoding)
    finally:
        store.close()
    # the pixels through h5py (HDF5's direct chunk write, chunks compressed on threads: FeatureStackWriter);
    # no chunk cache: whole chunks are written as they come
    with h5py.File(path, "r+", rdcc_nbytes=0) as h5:
        writer = FeatureStackWriter(
            h5, {n: tuple(map(str, placeholders[n].dims)) for n in gridded}, ny, nx, pending=pending
        )
        try:
            yield writer
        finally:
            writer._stop()
        writer._finish()


def write_feature_stack(
    ds: xr.Dataset,
    path: Path | str,
    *,
    crs: str | int | CRS,
    transform: Affine,
    attrs: Mapping[str, Any] | None = None,
    year: int | None = None,
    engine: str = "netcdf4",
    complevel: int = 1,
    keep_bits: int | None = KEEP_BITS,
) -> None:
    """Write a feature stack (``(period, y, x)`` and ``(y, x)`` float variables) as CF-1.8/ACDD NetCDF-4.

    The whole stack at once; :func:`feature_stack_writer` writes the same file block by block.

    Args:
        ds: the stack, e.g. from :func:`hrlc.chain.features.feature_stack`; existing ``x``/``y``
            coordinates must be the pixel centres of `transform`.
        path: output file (overwritten). The caller commits it to the lake.
        crs: EPSG code, ``"EPSG:n"``, WKT or PROJ string.
        transform: north-up affine transform of the grid (pixel corner convention, as rasterio).
        attrs: global attributes (title, source, ...) overriding the defaults; ``None`` values are dropped.
        year: if given, adds CF ``time``/``time_bnds`` coordinates and ACDD ``time_coverage_*``.
        engine: ``"netcdf4"`` (default) or ``"h5netcdf"`` (needs h5py).
        complevel: zlib level 1..9.
        keep_bits: significant mantissa bits of the float variables kept (`KEEP_BITS`; None: all, lossless);
            the netcdf4 engine only.
    """
    transform = Affine(*list(transform)[:6])
    ny, nx = int(ds.sizes["y"]), int(ds.sizes["x"])
    xs = transform.c + transform.a * (np.arange(nx) + 0.5)
    ys = transform.f + transform.e * (np.arange(ny) + 0.5)
    for axis, expected, res in (("x", xs, transform.a), ("y", ys, transform.e)):
        given = ds.coords.get(axis)
        if (
            given is not None
            and np.issubdtype(given.dtype, np.floating)
            and not np.allclose(given.values, expected, rtol=0, atol=abs(res) * 1e-3)
        ):
            raise ValueError(f"{axis} coordinates of the dataset are not the pixel centres of the transform")
    with feature_stack_writer(
        path,
        ds,
        height=ny,
        width=nx,
        crs=crs,
        transform=transform,
        attrs=attrs,
        year=year,
        engine=engine,
        complevel=complevel,
        keep_bits=keep_bits,
    ) as writer:
        writer.write(ds)


def read_feature_stack(path: Path | str, *, engine: str = "netcdf4") -> xr.Dataset:
    """Open a feature stack written by :func:`write_feature_stack` (lazily; ``.load()`` to read it all).

    The ``period`` coordinate holds the labels again (``"01"``, ``"season2"``); ``crs`` (and ``time_bnds``)
    are coordinates, so every data variable is a feature. Use :func:`grid_of` for the CRS and transform.
    """
    ds = xr.open_dataset(Path(path), engine=engine, decode_coords="all")
    if PERIOD_LABEL in ds.coords:
        labels = [str(v) for v in ds[PERIOD_LABEL].values]
        ds = ds.drop_vars(PERIOD_LABEL).assign_coords(period=("period", labels, ds[PERIOD_LABEL].attrs))
    if GRID_MAPPING in ds.data_vars:
        ds = ds.set_coords(GRID_MAPPING)
    return ds


def grid_of(ds: xr.Dataset) -> tuple[str, Affine]:
    """``(crs, transform)`` of a feature stack: ``"EPSG:n"`` when the CRS is an EPSG one, else WKT.

    The transform comes from the grid mapping's ``GeoTransform`` if present, else from the ``x``/``y``
    pixel centres (which need at least 2 pixels on each axis).
    """
    if GRID_MAPPING not in ds.variables:
        raise ValueError(f"dataset has no {GRID_MAPPING!r} grid-mapping variable")
    gm = ds[GRID_MAPPING].attrs
    wkt = gm.get("crs_wkt") or gm.get("spatial_ref")
    if not wkt:
        raise ValueError("grid-mapping variable has neither crs_wkt nor spatial_ref")
    crs = CRS.from_wkt(wkt)
    epsg = crs.to_epsg(min_confidence=100)
    crs_str = f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()
    if "GeoTransform" in gm:
        transform = Affine.from_gdal(*(float(v) for v in str(gm["GeoTransform"]).split()))
    else:
        xs, ys = ds["x"].values, ds["y"].values
        if len(xs) < 2 or len(ys) < 2:
            raise ValueError("cannot derive the transform from fewer than 2 pixels without GeoTransform")
        dx, dy = float(xs[1] - xs[0]), float(ys[1] - ys[0])
        transform = Affine(dx, 0.0, float(xs[0]) - dx / 2, 0.0, dy, float(ys[0]) - dy / 2)
    return crs_str, transform
