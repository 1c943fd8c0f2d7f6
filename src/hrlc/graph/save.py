"""`save_result` of hrlc: files under `results/{graph_id}/` of a store, with a STAC Item each when registered.

GTiff writes one COG per label of the temporal dimension (`result_{graph_id}_{YYYY-MM-DD}.tif`; a cube
without time: `..._data.tif`), bands as COG bands with their names; netCDF writes the whole cube to one
file (bands as variables, CF grid mapping); JSON writes non-raster values (numbers, arrays, strings).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from hrlc.graph.errors import GraphError
from hrlc.lake import layout

if TYPE_CHECKING:
    from hrlc.graph.env import GraphEnv

FORMATS = {
    "gtiff": ("tif", "image/tiff; application=geotiff; profile=cloud-optimized"),
    "netcdf": ("nc", "application/x-netcdf"),
    "json": ("json", "application/json"),
}


def _format(name: Any) -> str:
    fmt = str(name or "").lower()
    if fmt not in FORMATS:
        raise GraphError(
            "FormatUnsupported",
            f"Output format {name!r} is not supported; use one of GTiff, netCDF, JSON (see GET /file_formats).",
        )
    return fmt


def is_raster(data: Any) -> bool:
    return isinstance(data, xr.DataArray) and {"x", "y"} <= set(data.dims)


def _time_dim(data: xr.DataArray) -> str | None:
    return next((str(d) for d in data.dims if str(d) in ("t", "time")), None)


def _band_dim(data: xr.DataArray) -> str | None:
    return next((str(d) for d in data.dims if str(d) in ("bands", "band", "b")), None)


def _crs_transform(data: xr.DataArray, env: GraphEnv) -> tuple[str, Any]:
    from affine import Affine

    try:
        gbox = data.odc.geobox
    except Exception:  # noqa: BLE001 - odc-geo raises several types for cubes without a CRS coordinate
        gbox = None
    if gbox is not None and gbox.crs is not None:
        return str(gbox.crs), gbox.affine
    if env.crs is None:
        raise GraphError("FormatUnsuitable", "GTiff needs a cube with a coordinate reference system.")
    x, y = data["x"].values, data["y"].values
    dx = float(x[1] - x[0]) if len(x) > 1 else 1.0
    dy = float(y[1] - y[0]) if len(y) > 1 else -1.0
    return env.crs, Affine(dx, 0, float(x[0]) - dx / 2, 0, dy, float(y[0]) - dy / 2)


def _raster_array(data: xr.DataArray) -> tuple[np.ndarray, Any]:
    values = np.asarray(data.values)
    if values.dtype == bool:
        values = values.astype(np.uint8)
    elif values.dtype == np.float64:
        values = values.astype(np.float32)
    elif values.dtype == np.int64:
        values = values.astype(np.int32)
    nodata = float("nan") if np.issubdtype(values.dtype, np.floating) else None
    return values, nodata


def _label(value: Any) -> str:
    if isinstance(value, np.datetime64):
        return str(value.astype("datetime64[D]"))
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in str(value))


def _period(env: GraphEnv, label: Any = None) -> tuple[dt.datetime, dt.datetime]:
    if isinstance(label, np.datetime64):
        t = dt.datetime.fromisoformat(str(label.astype("datetime64[s]"))).replace(tzinfo=dt.UTC)
        return t, t
    starts, ends = zip(*(_item_range(i) for i in env.loaded), strict=True) if env.loaded else ((), ())
    now = dt.datetime.now(dt.UTC)
    return (min(starts, default=now), max(ends, default=now))


def _item_range(item: Any) -> tuple[dt.datetime, dt.datetime]:
    cm = item.common_metadata
    return (cm.start_datetime or item.datetime), (cm.end_datetime or item.datetime)


def _key(env: GraphEnv, label: str, fmt: str) -> str:
    return layout.key("graph-result", graph_id=env.graph_id, label=label, suffix=FORMATS[fmt][0])


def _write_gtiff(env: GraphEnv, data: xr.DataArray) -> None:
    from hrlc.products.cog import write_cog

    tdim, bdim = _time_dim(data), _band_dim(data)
    extra = set(map(str, data.dims)) - {"x", "y"} - {str(d) for d in (tdim, bdim) if d}
    if extra:
        raise GraphError(
            "FormatUnsuitable",
            f"GTiff holds bands over x and y (and one file per time step); the cube also has {sorted(extra)}.",
        )
    crs, transform = _crs_transform(data, env)
    steps = list(data[tdim].values) if tdim else [None]
    for step in steps:
        env.check_cancelled()
        cube = data.sel({tdim: step}) if tdim else data
        cube = cube.transpose(bdim, "y", "x") if bdim else cube.transpose("y", "x")
        values, nodata = _raster_array(cube)
        names = [str(b) for b in cube[bdim].values] if bdim else None
        key = _key(env, "data" if step is None else _label(step), "gtiff")
        write_cog(env.store, key, values, crs=crs, transform=transform, nodata=nodata, band_names=names)
        start, end = _period(env, step)
        env.record(key, FORMATS["gtiff"][1], start, end, raster=True)


def _write_netcdf(env: GraphEnv, data: xr.DataArray) -> None:
    bdim, tdim = _band_dim(data), _time_dim(data)
    ds = data.to_dataset(dim=bdim) if bdim else data.to_dataset(name="data")
    if tdim and tdim != "time":
        ds = ds.rename({tdim: "time"})
    for var in ds.data_vars.values():
        var.attrs.pop("crs", None)
        if "spatial_ref" in ds.coords:
            var.attrs["grid_mapping"] = "spatial_ref"
    ds.attrs = {"Conventions": "CF-1.8", "source": f"hrlc process graph {env.graph_id}"}
    key = _key(env, "data", "netcdf")
    with env.store.writing(key) as tmp:
        ds.load().to_netcdf(tmp, engine="netcdf4")
    start, end = _period(env)
    env.record(key, FORMATS["netcdf"][1], start, end, raster=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, xr.DataArray):
        value = value.values
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()] if value.ndim else _jsonable(value.item())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dt.datetime | dt.date | np.datetime64):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _write_json(env: GraphEnv, data: Any) -> None:
    key = _key(env, "data", "json")
    env.store.write_bytes(key, json.dumps(_jsonable(data)).encode())
    start, end = _period(env)
    env.record(key, FORMATS["json"][1], start, end, raster=False)


def write(env: GraphEnv, data: Any, format: Any) -> None:
    """Write `data` in `format` (see the module doc)."""
    fmt = _format(format)
    if fmt == "json":
        if is_raster(data):
            raise GraphError("FormatUnsuitable", "JSON holds non-raster values; save raster cubes as GTiff.")
        _write_json(env, data)
        return
    if not is_raster(data):
        raise GraphError(
            "FormatUnsuitable", f"{format} holds raster data cubes (x, y); this value is not one: use JSON."
        )
    if fmt == "gtiff":
        _write_gtiff(env, data)
    else:
        _write_netcdf(env, data)


def save_result(env: GraphEnv, data: Any, format: Any, options: Any = None) -> bool:
    """The `save_result` process of hrlc."""
    write(env, data, format)
    return True
