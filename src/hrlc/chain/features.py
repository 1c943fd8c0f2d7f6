"""Feature engineering of the land-cover chain: spectral indices, gap filling and the feature matrix.

The classifier of the HRLC chain sees, per pixel, the whole year of one sensor: every band and a few
normalised-difference indices for every compositing period (monthly for Sentinel-2, seasonal for Landsat),
plus annual statistics of the indices. This module builds that stack from the optical composites and
flattens it to the ``(n_features, y, x)`` matrix the classifier consumes. It is pure science: xarray/numpy in
and out, no I/O; the NetCDF writer is :mod:`hrlc.products.netcdf`.

Conventions
-----------
- Input: an ``xarray.Dataset`` whose variables are bands named with STAC common names (:data:`BANDS`;
  Landsat has only ``blue, green, red, nir, swir16, swir22``), dims ``(period, y, x)``, float32 surface
  reflectance (unitless, nominally 0..1), NaN where the period has no valid observation. Variables that are
  not optical bands (e.g. SAR backscatter) are carried through, gap-filled, but get no index.
- ``period`` labels (:mod:`hrlc.periods`): ``"01".."12"`` (calendar months) or ``"season1".."season4"``
  (calendar quarters Jan-Mar, Apr-Jun, Jul-Sep, Oct-Dec). Both are cyclic: December neighbours January,
  season4 neighbours season1. Periods are treated as equally spaced (a month is a month, whatever its length).
- Indices (:data:`INDICES`) are normalised differences ``(a - b) / (a + b)``, float32, unitless, clipped to
  [-1, 1] (values outside only arise from slightly negative reflectance, i.e. noise); a zero denominator or a
  NaN input gives NaN. They are computed from the composites *before* gap filling and then filled like the
  bands (the index is interpolated, as in NDVI time-series practice, rather than recomputed from
  interpolated bands).
- Gap filling and annual statistics are numba kernels parallel over pixels (no Python per pixel); memory
  is the output plus a few planes. Every feature of a pixel depends on that pixel's periods only, so a grid
  can be streamed block by block, and :func:`feature_variables` gives a block's variables one at a time.
- Feature names in the matrix: ``{variable}_{period}`` for temporal variables (``ndvi_03``,
  ``red_season2``) and ``{index}_{stat}`` for annual statistics (``ndvi_max``), in a fixed order
  (see :func:`feature_names`) that does not depend on the order of the Dataset's variables, so a model
  trained on one stack applies to another stack of the same sensor.
- Every output variable carries CF attributes: ``long_name``, ``units = "1"``, ``standard_name`` where CF
  has one (``surface_bidirectional_reflectance`` for bands; none for indices) and ``grid_mapping = "crs"``
  (the grid-mapping variable written by the NetCDF writer).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import xarray as xr
from numba import njit, prange

from hrlc import periods

__all__ = [
    "BANDS",
    "INDICES",
    "STATS",
    "feature_names",
    "feature_stack",
    "feature_variables",
    "gap_fill",
    "spectral_indices",
    "matrix_variables",
    "to_matrix",
]

#: canonical optical bands (STAC common names) in matrix order, with their centre wavelength (µm)
BANDS: dict[str, float] = {
    "blue": 0.49,
    "green": 0.56,
    "red": 0.665,
    "rededge1": 0.705,
    "rededge2": 0.74,
    "rededge3": 0.783,
    "nir": 0.842,
    "nir08": 0.865,
    "swir16": 1.61,
    "swir22": 2.19,
}

#: normalised differences ``(a - b) / (a + b)``: name -> (a, b), in matrix order
INDICES: dict[str, tuple[str, str]] = {
    "ndvi": ("nir", "red"),
    "ndwi": ("green", "nir"),  # McFeeters (1996): open water
    "mndwi": ("green", "swir16"),  # Xu (2006)
    "ndbi": ("swir16", "nir"),  # Zha et al. (2003): built-up
    "nbr": ("nir", "swir22"),  # normalized burn ratio
    "ndre": ("nir", "rededge1"),  # red-edge NDVI (Sentinel-2 only)
}

_INDEX_NAMES: dict[str, str] = {
    "ndvi": "normalized difference vegetation index",
    "ndwi": "normalized difference water index (McFeeters)",
    "mndwi": "modified normalized difference water index",
    "ndbi": "normalized difference built-up index",
    "nbr": "normalized burn ratio",
    "ndre": "normalized difference red-edge index",
}

#: annual statistics of each index over the periods, in matrix order
STATS: tuple[str, ...] = ("min", "max", "median", "amplitude")

_CF_STAT_METHOD = {"min": "minimum", "max": "maximum", "median": "median", "amplitude": "range"}

GRID_MAPPING = "crs"


# ----------------------------------------------------------------------------------------------- indices


def _normalized_difference(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    a, b = xr.align(a, b, join="exact")
    if a.chunks is not None or b.chunks is not None:  # dask: lazy, same formula
        total = a + b
        lazy = ((a - b) / total.where(total != 0)).clip(-1.0, 1.0)
        return lazy.astype(np.float32, copy=False)
    av = a.values.astype(np.float32, copy=False)
    bv = b.transpose(*a.dims).values.astype(np.float32, copy=False)
    den = av + bv
    zero = den == 0
    nd = np.subtract(av, bv)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(nd, den, out=nd)
    nd[zero] = np.nan
    np.clip(nd, -1.0, 1.0, out=nd)
    return xr.DataArray(nd, dims=a.dims, coords=a.coords)


def spectral_indices(composite: xr.Dataset) -> xr.Dataset:
    """The composite with every index of :data:`INDICES` whose two bands exist added as a variable.

    Indices are float32 ``(a - b) / (a + b)`` clipped to [-1, 1]; NaN where either band is NaN or
    ``a + b == 0``. Existing variables are kept unchanged (an index already present is recomputed).
    """
    out = composite.copy()
    for name, (a, b) in INDICES.items():
        if a in composite and b in composite:
            da = _normalized_difference(composite[a], composite[b])
            da.attrs = _attrs_for(name)
            out[name] = da
    return out


# ----------------------------------------------------------------------------------------------- gap fill


def _period_positions(labels: Iterable[object]) -> tuple[np.ndarray, float]:
    """Positions of the periods on their cycle and the cycle length.

    Months sit at 0..11 on a cycle of 12, seasons at 0..3 on a cycle of 4 (:data:`hrlc.periods.KINDS`);
    other labels at 0..n-1 on a cycle of n (they are assumed equally spaced and consecutive).
    """
    names = [str(v) for v in labels]
    n = len(names)
    pos, cycle = np.arange(n, dtype=np.float64), float(n)
    for calendar in periods.KINDS.values():
        if n and all(v in calendar for v in names):
            pos, cycle = np.array([calendar.index(v) for v in names], dtype=np.float64), float(len(calendar))
            break
    if n > 1 and np.any(np.diff(pos) <= 0):
        raise ValueError(f"periods must be unique and in calendar order, got {names}")
    return pos, cycle


@njit(parallel=True, cache=True)
def _gap_fill_kernel(a: np.ndarray, pos: np.ndarray, cycle: float, cyclic: bool, out: np.ndarray) -> None:
    """Per pixel (column of the ``(n, m)`` array `a`): copy valid values, interpolate the missing ones."""
    n, m = a.shape
    for i in prange(m):
        for p in range(n):
            v = a[p, i]
            if not np.isnan(v):
                out[p, i] = v
                continue
            prev = -1
            d_prev = 0.0
            for k in range(1, n):  # nearest valid period before p (wrapping if cyclic)
                q = p - k
                if q < 0:
                    if not cyclic:
                        break
                    q += n
                if not np.isnan(a[q, i]):
                    prev = q
                    d_prev = pos[p] - pos[q] if q < p else pos[p] - pos[q] + cycle
                    break
            nxt = -1
            d_next = 0.0
            for k in range(1, n):  # nearest valid period after p (wrapping if cyclic)
                q = p + k
                if q >= n:
                    if not cyclic:
                        break
                    q -= n
                if not np.isnan(a[q, i]):
                    nxt = q
                    d_next = pos[q] - pos[p] if q > p else pos[q] - pos[p] + cycle
                    break
            if prev >= 0 and nxt >= 0:
                lo = a[prev, i]
                out[p, i] = lo + (a[nxt, i] - lo) * (d_prev / (d_prev + d_next))
            elif prev >= 0:  # only without wrap-around: constant extrapolation at the edges
                out[p, i] = a[prev, i]
            elif nxt >= 0:
                out[p, i] = a[nxt, i]
            else:
                out[p, i] = np.nan


def _gap_fill_array(a: np.ndarray, pos: np.ndarray, cycle: float, cyclic: bool) -> np.ndarray:
    """Fill NaN along axis 0 of `a` (periods first) by linear interpolation; float32 copy.

    A numba kernel, parallel over pixels: for each missing period the nearest valid period on each side
    (wrapping around the cycle if `cyclic`), weights from the positions on the calendar. Without
    wrap-around the edges take the nearest valid value (constant extrapolation).
    """
    n = a.shape[0]
    flat = np.ascontiguousarray(a, dtype=np.float32).reshape(n, -1)
    out = np.empty_like(flat)
    if flat.size:
        _gap_fill_kernel(flat, pos.astype(np.float64), float(cycle), cyclic, out)
    return out.reshape(a.shape)


def gap_fill(ds: xr.Dataset, dim: str = "period", *, cyclic: bool = True) -> xr.Dataset:
    """Fill NaN of every variable along `dim`, per pixel, by linear interpolation between valid periods.

    Cyclic by default (December neighbours January, season4 neighbours season1); months and seasons are
    placed on their calendar positions, so a missing label leaves a proportional gap. A pixel without any
    valid period stays NaN; valid values are never changed. Variables without `dim` are returned as they are.
    A numba kernel parallel over pixels, no Python per pixel; dask-backed variables are filled chunk by chunk
    (a chunk must hold all periods).
    """
    if dim not in ds.dims:
        raise ValueError(f"dataset has no dimension {dim!r}")
    pos, cycle = _period_positions(ds[dim].values)
    out = ds.copy()
    for name, da in ds.data_vars.items():
        if dim not in da.dims or not np.issubdtype(da.dtype, np.floating):
            continue
        out[name] = _fill(da, dim, pos, cycle, cyclic)
    return out


def _fill(da: xr.DataArray, dim: str, pos: np.ndarray, cycle: float, cyclic: bool) -> xr.DataArray:
    """One variable of :func:`gap_fill` (which has `dim` and is float), filled; same dims as `da`."""
    if da.chunks is None:
        rest = [d for d in da.dims if d != dim]
        values = _gap_fill_array(da.transpose(dim, *rest).values, pos, cycle, cyclic)
        filled = xr.DataArray(values, dims=(dim, *rest), coords=da.coords, attrs=da.attrs)
    else:  # dask: one kernel call per chunk (chunks must span `dim`)
        filled = xr.apply_ufunc(
            lambda arr: np.moveaxis(_gap_fill_array(np.moveaxis(arr, -1, 0), pos, cycle, cyclic), 0, -1),
            da,
            input_core_dims=[[dim]],
            output_core_dims=[[dim]],
            dask="parallelized",
            output_dtypes=[np.float32],
            keep_attrs=True,
        )
    return filled.transpose(*da.dims)


# ----------------------------------------------------------------------------------------------- stack


def _attrs_for(name: str) -> dict[str, str]:
    """CF attributes of a feature variable (grid_mapping refers to the writer's ``crs`` variable)."""
    if name in BANDS:
        return {
            "long_name": f"surface reflectance, {name} ({BANDS[name]:g} um)",
            "standard_name": "surface_bidirectional_reflectance",
            "units": "1",
            "grid_mapping": GRID_MAPPING,
        }
    if name in INDICES:
        a, b = INDICES[name]
        return {
            "long_name": f"{_INDEX_NAMES[name]}, ({a} - {b}) / ({a} + {b})",
            "units": "1",
            "grid_mapping": GRID_MAPPING,
        }
    base, _, stat = name.rpartition("_")
    if base in INDICES and stat in STATS:
        return {
            "long_name": f"annual {stat} of the {_INDEX_NAMES[base]} over the periods",
            "units": "1",
            "cell_methods": f"period: {_CF_STAT_METHOD[stat]}",
            "grid_mapping": GRID_MAPPING,
        }
    return {"long_name": name, "units": "1", "grid_mapping": GRID_MAPPING}


_STATS_BLOCK = 4096


@njit(parallel=True, cache=True)
def _stats_kernel(a: np.ndarray, out: np.ndarray) -> None:
    """Per pixel (column of the ``(n, m)`` array `a`): min, max, median, amplitude of the non-NaN values."""
    n, m = a.shape
    for blk in prange((m + _STATS_BLOCK - 1) // _STATS_BLOCK):
        buf = np.empty(n, dtype=np.float32)
        for i in range(blk * _STATS_BLOCK, min(m, (blk + 1) * _STATS_BLOCK)):
            k = 0
            for p in range(n):  # insertion sort of the valid values
                v = a[p, i]
                if np.isnan(v):
                    continue
                j = k
                while j > 0 and buf[j - 1] > v:
                    buf[j] = buf[j - 1]
                    j -= 1
                buf[j] = v
                k += 1
            if k == 0:
                for s in range(4):
                    out[s, i] = np.nan
                continue
            out[0, i] = buf[0]
            out[1, i] = buf[k - 1]
            out[2, i] = buf[k // 2] if k % 2 == 1 else np.float32(0.5) * (buf[k // 2 - 1] + buf[k // 2])
            out[3, i] = buf[k - 1] - buf[0]


def _annual_stats(da: xr.DataArray, dim: str) -> dict[str, xr.DataArray]:
    """min, max, median and amplitude (max - min) over `dim`, NaN-skipping; all-NaN pixels give NaN."""
    rest = tuple(d for d in da.dims if d != dim)
    arr = np.ascontiguousarray(da.transpose(dim, *rest).values, dtype=np.float32)
    n = arr.shape[0]
    out = np.empty((len(STATS), *arr.shape[1:]), dtype=np.float32)
    if arr.size:
        _stats_kernel(arr.reshape(n, -1), out.reshape(len(STATS), -1))
    coords = {k: v for k, v in da.coords.items() if dim not in v.dims}
    return {s: xr.DataArray(out[i], dims=rest, coords=coords) for i, s in enumerate(STATS)}


def feature_stack(composite: xr.Dataset, *, fill: bool = True, stats: bool = True) -> xr.Dataset:
    """Bands + indices (gap-filled if `fill`) + annual statistics of each index (if `stats`).

    Temporal variables are ``(period, y, x)``, statistics ``(y, x)`` named ``{index}_{stat}`` (stat in
    :data:`STATS`; amplitude = max - min), computed after gap filling; everything float32 with CF attributes.
    The variables of :func:`feature_variables`, together.
    """
    coords = composite.astype(np.float32, copy=False).coords
    out = xr.Dataset(coords=coords, attrs=dict(composite.attrs))
    for name, da in feature_variables(composite, fill=fill, stats=stats):
        out[name] = da
    return out


def feature_variables(
    composite: xr.Dataset, *, fill: bool = True, stats: bool = True
) -> Iterator[tuple[str, xr.DataArray]]:
    """The variables of :func:`feature_stack`, one at a time and in its order: ``(name, variable)``.

    Every pixel's features depend on that pixel's periods only, so the stack of a block of the grid is that
    block of the grid's stack: a caller streams the grid block by block. Memory: the composite, the variable
    being made, and the annual statistics (4 planes per index), which come last.
    """
    if "period" not in composite.dims:
        raise ValueError("composite has no 'period' dimension")
    comp = composite.astype(np.float32, copy=False)
    pos, cycle = _period_positions(comp["period"].values)
    indices = [n for n, (a, b) in INDICES.items() if a in comp and b in comp]
    names = _ordered(dict.fromkeys([*(str(v) for v in comp.data_vars), *indices]))
    statistics: dict[str, xr.DataArray] = {}
    for name in names:
        da = (
            _normalized_difference(comp[INDICES[name][0]], comp[INDICES[name][1]])
            if name in indices
            else comp[name]
        )
        if fill and "period" in da.dims and np.issubdtype(da.dtype, np.floating):
            da = _fill(da, "period", pos, cycle, cyclic=True)
        if stats and name in INDICES:
            for stat, s in _annual_stats(da, "period").items():
                s.attrs = _attrs_for(f"{name}_{stat}")
                statistics[f"{name}_{stat}"] = s.rename(f"{name}_{stat}")
        da = da.astype(np.float32, copy=False)
        if "period" in da.dims:
            da = da.transpose("period", ...)
        da.attrs = {**composite[name].attrs, **_attrs_for(name)} if name in composite else _attrs_for(name)
        da.name = name
        yield name, da
    yield from statistics.items()


def _order_key(name: str) -> tuple[int, int, str]:
    """Matrix order: bands, indices, other temporal variables, index statistics, other 2-D variables."""
    if name in BANDS:
        return (0, list(BANDS).index(name), name)
    if name in INDICES:
        return (1, list(INDICES).index(name), name)
    base, _, stat = name.rpartition("_")
    if base in INDICES and stat in STATS:
        return (3, list(INDICES).index(base) * len(STATS) + STATS.index(stat), name)
    return (2, 0, name)


def _ordered(names: Iterable[str]) -> list[str]:
    return sorted(names, key=_order_key)


def _matrix_vars(features: xr.Dataset) -> list[tuple[str, xr.DataArray]]:
    """(name, variable) pairs of the matrix: float ``(period, y, x)`` or ``(y, x)`` variables, in order."""
    selected = []
    for name, da in features.data_vars.items():
        if not np.issubdtype(da.dtype, np.floating) or {"y", "x"} - set(da.dims):
            continue
        extra = set(da.dims) - {"y", "x", "period"}
        if extra:
            raise ValueError(f"variable {name!r} has unexpected dims {da.dims}")
        selected.append((str(name), da))
    order = {n: i for i, n in enumerate(_ordered([n for n, _ in selected]))}
    # temporal variables and 2-D variables each keep the fixed order; 2-D ones after all temporal ones
    selected.sort(key=lambda item: ("period" not in item[1].dims, order[item[0]]))
    return selected


def _names_of(name: str, da: xr.DataArray) -> list[str]:
    if "period" in da.dims:
        return [f"{name}_{p}" for p in da["period"].values.astype(str)]
    return [name]


def matrix_variables(features: xr.Dataset) -> list[str]:
    """The variables of :func:`to_matrix`'s rows, in order (each over its periods, in coordinate order)."""
    return [name for name, _ in _matrix_vars(features)]


def feature_names(features: xr.Dataset) -> list[str]:
    """The names of the matrix rows of :func:`to_matrix`, in order (without building the matrix)."""
    return [n for name, da in _matrix_vars(features) for n in _names_of(name, da)]


def to_matrix(features: xr.Dataset) -> tuple[np.ndarray, list[str]]:
    """Flatten a feature stack to ``(n_features, y, x)`` float32 and the feature names, in a fixed order.

    Order: temporal variables (bands in :data:`BANDS` order, then indices in :data:`INDICES` order, then
    other variables alphabetically), each expanded over its periods in coordinate order
    (``red_01 .. red_12``); then 2-D variables (index statistics in :data:`INDICES` x :data:`STATS` order,
    then others alphabetically). Non-float and non-gridded variables (e.g. a ``crs`` variable) are skipped.
    """
    selected = _matrix_vars(features)
    if not selected:
        raise ValueError("feature stack has no (period, y, x) or (y, x) float variable")
    ny, nx = int(features.sizes["y"]), int(features.sizes["x"])
    names = [n for name, da in selected for n in _names_of(name, da)]
    out = np.empty((len(names), ny, nx), dtype=np.float32)
    i = 0
    for _name, da in selected:
        if "period" in da.dims:
            arr = da.transpose("period", "y", "x").values
            out[i : i + arr.shape[0]] = arr
            i += arr.shape[0]
        else:
            out[i] = da.transpose("y", "x").values
            i += 1
    return out, names
