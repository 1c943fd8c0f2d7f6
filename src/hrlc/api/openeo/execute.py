"""Synchronous evaluation of the one small graph shape `POST /result` runs: `load_collection` → `save_result`.

The load reads, with rasterio, the product files of the catalogue's items in the spatial and temporal extent
(pgstac search), windowed to the extent and mosaicked (first item wins), optionally a subset of `bands`
(the names of the asset's `eo:bands`), and returns one GeoTIFF. Anything else — other processes, several
time steps, several CRSs, a format other than GTiff — is refused with an openEO error that points to batch
jobs. The pixel budget is checked again on the real grid before anything is read.
"""

from __future__ import annotations

import io
import json
from typing import Any

from hrlc.api.openeo.context import OpenEOContext
from hrlc.api.openeo.errors import OpenEOError

SYNC_FORMATS = {"gtiff": "image/tiff; application=geotiff"}


def _too_complex(why: str) -> OpenEOError:
    return OpenEOError(
        "ProcessGraphComplexity",
        f"{why}: too complex for synchronous processing. Please use a batch job instead (POST /jobs).",
    )


def _shape(graph: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The arguments of the `load_collection` and `save_result` nodes of a two-node graph."""
    by_pid = {n["process_id"]: n for n in graph.values()}
    if set(by_pid) != {"load_collection", "save_result"} or len(graph) != 2:
        raise _too_complex("synchronous processing runs only load_collection followed by save_result")
    save = by_pid["save_result"].get("arguments") or {}
    load_id = next(k for k, n in graph.items() if n["process_id"] == "load_collection")
    if save.get("data") != {"from_node": load_id}:
        raise OpenEOError("ProcessGraphInvalid", "save_result must save the output of load_collection.")
    return by_pid["load_collection"].get("arguments") or {}, save


def _datetime(extent: Any) -> str | None:
    if extent is None:
        return None
    if not isinstance(extent, list) or len(extent) != 2:
        raise OpenEOError(
            "ProcessParameterInvalid", "temporal_extent must be [start, end] (either may be null)."
        )
    start, end = (v if v is not None else ".." for v in extent)
    return f"{start}/{end}"


def run(process: dict[str, Any], ctx: OpenEOContext, max_pixels: int) -> tuple[bytes, str]:
    """(file bytes, media type) of a small `load_collection` → `save_result` graph."""
    import numpy as np
    import rasterio
    from rasterio.crs import CRS
    from rasterio.io import MemoryFile
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    from hrlc.lake.store import open_store

    load, save = _shape(process["process_graph"])
    fmt = str(save.get("format", "")).lower()
    if fmt not in SYNC_FORMATS:
        raise _too_complex(f"format {save.get('format')!r} in synchronous processing (GTiff only)")
    ext = load.get("spatial_extent")
    if not isinstance(ext, dict):
        raise _too_complex("an unbounded spatial extent")
    crs = ext.get("crs", 4326)
    try:
        w, s, e, n = (float(ext[k]) for k in ("west", "south", "east", "north"))
    except (KeyError, TypeError, ValueError):
        raise OpenEOError(
            "ProcessParameterInvalid", "spatial_extent must have numbers west, south, east and north."
        ) from None
    bbox = (w, s, e, n)
    ll = transform_bounds(f"EPSG:{crs}" if isinstance(crs, int) else crs, "EPSG:4326", *bbox)
    search: dict[str, Any] = {"collections": [load["id"]], "bbox": list(ll), "limit": 50}
    dt = _datetime(load.get("temporal_extent"))
    if dt:
        search["datetime"] = dt
    rows = ctx.collections._query("SELECT search(%s::jsonb)", [json.dumps(search)])
    raw = rows[0][0] if rows else {}
    items = (json.loads(raw) if isinstance(raw, str) else raw).get("features") or []
    if not items:
        raise OpenEOError("NoDataAvailable", f"Collection '{load['id']}' has no data in the extent.", 400)
    times = {(i["properties"].get("start_datetime") or i["properties"].get("datetime")) for i in items}
    if len(times) > 1:
        raise _too_complex(f"{len(times)} time steps (narrow temporal_extent to one)")
    store = open_store(ctx.settings.store, ctx.settings)
    wanted = load.get("bands")
    out: Any = None
    profile: dict[str, Any] = {}
    bounds: tuple[float, float, float, float] = bbox
    names: list[str] = []
    with store.raster_env():
        for item in items:
            asset = (item.get("assets") or {}).get("data")
            if not asset:
                continue
            try:
                path = store.gdal_path(store.key_of(asset["href"]))
            except ValueError:  # not a file of this lake
                continue
            with rasterio.open(path) as src:
                band_names = [b.get("name") for b in asset.get("eo:bands") or []] or [
                    f"b{i}" for i in range(1, src.count + 1)
                ]
                if wanted:
                    missing = [b for b in wanted if b not in band_names]
                    if missing:
                        raise OpenEOError(
                            "ProcessParameterInvalid",
                            f"The value passed for parameter 'bands' in process 'load_collection' is invalid: "
                            f"unknown bands {missing} (the collection has {band_names}).",
                        )
                indexes = (
                    [band_names.index(b) + 1 for b in wanted] if wanted else list(range(1, src.count + 1))
                )
                if out is None:
                    same = CRS.from_user_input(f"EPSG:{crs}" if isinstance(crs, int) else crs) == src.crs
                    left, bottom, right, top = bbox if same else transform_bounds("EPSG:4326", src.crs, *ll)
                    window = (
                        from_bounds(left, bottom, right, top, src.transform).round_offsets().round_lengths()
                    )
                    if window.width * window.height > max_pixels:
                        raise _too_complex(f"{window.width * window.height:,} pixels (limit {max_pixels:,})")
                    nodata = src.nodata if src.nodata is not None else 0
                    out = np.full((len(indexes), window.height, window.width), nodata, dtype=src.dtypes[0])
                    transform = src.window_transform(window)
                    profile = {
                        "driver": "GTiff", "crs": src.crs, "transform": transform, "dtype": src.dtypes[0],
                        "count": len(indexes), "width": window.width, "height": window.height, "nodata": nodata,
                        "compress": "deflate",
                    }  # fmt: skip
                    names = [band_names[i - 1] for i in indexes]
                    bounds = (left, bottom, right, top)
                elif src.crs != profile["crs"]:
                    raise _too_complex("items in several CRSs")
                win = from_bounds(*bounds, src.transform).round_offsets().round_lengths()
                data = src.read(indexes, window=win, boundless=True, fill_value=profile["nodata"])
                data = data[:, : out.shape[1], : out.shape[2]]
                empty = out[:, : data.shape[1], : data.shape[2]] == profile["nodata"]
                out[:, : data.shape[1], : data.shape[2]][empty] = data[empty]
    if out is None:
        raise OpenEOError(
            "NoDataAvailable", f"Collection '{load['id']}' has no data files in the extent.", 400
        )
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(out)
            dst.descriptions = tuple(names)
        buf = io.BytesIO(mem.read())
    return buf.getvalue(), SYNC_FORMATS[fmt]
