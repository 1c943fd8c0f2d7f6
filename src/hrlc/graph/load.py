"""`load_collection` over hrlc's catalogue: the items of a collection in the extents, loaded by odc-stac.

The cube is an `xarray.DataArray` with the dimensions openEO names `t`, `bands`, `y`, `x`, on the grid of
the collection's products (their CRS and pixel size, read from `proj:*`), lazily (dask) chunked. Band names
are the assets' `eo:bands` names (a product's one multi-band COG) or the asset keys. A pixel with a band's
`nodata` value becomes NaN (openEO's no-data), so cubes of products are float32.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pystac
import xarray as xr

from hrlc.catalog.visibility import visible
from hrlc.graph.errors import GraphError
from hrlc.lake.store import configure_odc_s3

if TYPE_CHECKING:
    from hrlc.graph.env import GraphEnv

CHUNK_PX = 2048


def extent_box(extent: Any) -> Any:
    """A spatial extent (pg-parser `BoundingBox`, dict or None) as an odc-geo box in its own CRS."""
    if extent is None:
        return None
    if hasattr(extent, "model_dump"):
        extent = extent.model_dump()
    if not isinstance(extent, dict):
        raise GraphError(
            "ProcessParameterInvalid",
            "load_collection: spatial_extent must be a bounding box {west, south, east, north, crs} or null.",
        )
    try:
        w, s, e, n = (float(extent[k]) for k in ("west", "south", "east", "north"))
    except (KeyError, TypeError, ValueError):
        raise GraphError(
            "ProcessParameterInvalid",
            "load_collection: spatial_extent needs numbers west, south, east and north.",
        ) from None
    if not (w < e and s < n):
        raise GraphError("ProcessParameterInvalid", "load_collection: spatial_extent is empty.")
    crs = extent.get("crs") or 4326
    from odc.geo.geom import box

    try:
        return box(w, s, e, n, f"EPSG:{crs}" if str(crs).isdigit() else crs)
    except Exception:  # noqa: BLE001 - pyproj's errors for unknown CRSs
        raise GraphError("ProcessParameterInvalid", f"load_collection: unknown CRS {crs!r}.") from None


def _instant(value: Any) -> dt.datetime | None:
    value = getattr(value, "root", value)
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise GraphError("ProcessParameterInvalid", f"load_collection: bad temporal_extent value {value!r}.")
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def time_range(extent: Any) -> tuple[dt.datetime | None, dt.datetime | None]:
    """A temporal extent (pg-parser `TemporalInterval`, list or None) as [start, end) datetimes."""
    if extent is None:
        return None, None
    values = list(getattr(extent, "root", extent))
    if len(values) != 2:
        raise GraphError("ProcessParameterInvalid", "load_collection: temporal_extent must be [start, end].")
    return _instant(values[0]), _instant(values[1])


def band_names(item: pystac.Item) -> list[str]:
    """The band names of an item's raster data: the `eo:bands` names of its COG assets (a product's one
    multi-band COG, or a single named band), else the asset keys."""
    names: list[str] = []
    for key, asset in item.assets.items():
        if "data" not in (asset.roles or ["data"]) or not str(asset.media_type or "").startswith(
            "image/tiff"
        ):
            continue
        eo = asset.extra_fields.get("eo:bands") or []
        names += [b.get("name") or f"{key}.{i}" for i, b in enumerate(eo, 1)] if eo else [key]
    return names


def _odc_names(item: pystac.Item) -> dict[str, str]:
    """{name odc-stac gives a band: hrlc's name} where they differ (odc names a 1-band asset by its key)."""
    renames = {}
    for key, asset in item.assets.items():
        eo = asset.extra_fields.get("eo:bands") or []
        if len(eo) == 1 and eo[0].get("name") and eo[0]["name"] != key:
            renames[key] = eo[0]["name"]
    return renames


def _main_product(signatures: Counter[tuple[str, ...]]) -> list[str]:
    """The bands of the product most items have (ties: the one with more bands, e.g. composite over mask)."""
    best: tuple[str, ...] = max(signatures, key=lambda sig: (signatures[sig], len(sig)))
    return list(best)


def _grid(items: list[pystac.Item], env: GraphEnv) -> tuple[str, float]:
    """The most common CRS of the items and its pixel size: from `proj:epsg`/`proj:code` and `proj:transform`,
    or from the header of the first item's raster when its metadata has no projection."""
    crs_res: Counter[tuple[str, float]] = Counter()
    for item in items:
        p = item.properties
        code = p.get("proj:code") or (f"EPSG:{p['proj:epsg']}" if p.get("proj:epsg") else None)
        transform = p.get("proj:transform")
        if code and transform:
            crs_res[(str(code), abs(float(transform[0])))] += 1
    if crs_res:
        return crs_res.most_common(1)[0][0]
    import rasterio

    href = next(a.href for a in items[0].assets.values() if str(a.media_type or "").startswith("image/tiff"))
    with env.source.raster_env(), rasterio.open(href) as src:
        return str(src.crs), abs(src.transform.a)


def load_collection(
    env: GraphEnv,
    id: str,
    spatial_extent: Any = None,
    temporal_extent: Any = None,
    bands: list[str] | None = None,
    properties: Any = None,
) -> xr.DataArray:
    """The `load_collection` process of hrlc (see the module doc)."""
    import odc.stac

    if id not in env.catalog.collection_ids():
        raise GraphError("CollectionNotFound", f"Collection '{id}' does not exist.", 404)
    if properties:
        raise GraphError(
            "ProcessParameterInvalid",
            "load_collection: filtering by `properties` is not supported; filter the cube after loading.",
        )
    area = extent_box(spatial_extent)
    bbox = tuple(area.to_crs("EPSG:4326").boundingbox) if area is not None else None
    start, end = time_range(temporal_extent)
    items = env.catalog.search(id, bbox, start, end)
    if env.viewer is not None:  # another user's job products stay out of this user's cube
        items = [i for i in items if visible(i.collection_id, i.properties, env.viewer)]
    if not items:
        raise GraphError(
            "NoDataAvailable", f"Collection '{id}' has no data in the requested spatial and temporal extent."
        )
    signatures = Counter(tuple(band_names(i)) for i in items)
    available = list(dict.fromkeys(b for sig in signatures for b in sig))
    if isinstance(bands, str):
        bands = [bands]
    if bands:
        unknown = [b for b in bands if b not in available]
        if unknown:
            raise GraphError(
                "ProcessParameterInvalid",
                f"load_collection: unknown bands {unknown} in collection '{id}' (it has {available}).",
            )
        wanted = list(bands)
    else:  # the bands of the collection's main product (a collection may hold several, e.g. composite + mask)
        wanted = _main_product(signatures)
    items = [i for i in items if set(wanted) <= set(band_names(i))]
    if not items:
        raise GraphError(
            "ProcessParameterInvalid",
            f"load_collection: no product of collection '{id}' has all of the bands {wanted}; "
            f"load them separately and merge_cubes.",
        )
    renames = {odc: ours for i in items for odc, ours in _odc_names(i).items()}
    crs, resolution = _grid(items, env)
    env.check_cancelled()
    configure_odc_s3(env.source.settings)  # s3:// hrefs through the lake's endpoint
    ds = odc.stac.load(
        items,
        bands=[next((k for k, v in renames.items() if v == b), b) for b in wanted],
        crs=crs,
        resolution=resolution,
        geopolygon=area,
        chunks={"x": CHUNK_PX, "y": CHUNK_PX},
        groupby="time",
    )
    px = ds.sizes["x"] * ds.sizes["y"]
    if env.max_pixels is not None and px > env.max_pixels:
        raise GraphError(
            "ProcessGraphComplexity",
            f"load_collection of '{id}' covers {px:,} pixels, more than the limit of {env.max_pixels:,}: "
            "narrow the spatial extent or use a batch job (POST /jobs).",
        )
    env.loaded += items
    ds = ds.rename({k: v for k, v in renames.items() if k in ds.data_vars})
    masked = {}
    for name, var in ds.data_vars.items():
        nodata = var.attrs.get("nodata")
        var = var.astype(np.float32)
        masked[name] = var.where(var != nodata) if nodata is not None and not np.isnan(nodata) else var
    cube = xr.Dataset(masked, coords=ds.coords).to_dataarray(dim="bands")
    cube = cube.rename({"time": "t"}).transpose("t", "bands", "y", "x")
    cube.attrs["crs"] = crs
    return cube
