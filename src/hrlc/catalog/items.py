"""STAC Items for every product hrlc writes into the Data Lake.

An item's id is the product's file stem (unique in its collection, since the layout puts the year and
period in every name), its collection the product family's collection. Raster products get the projection,
raster and eo extensions from the file itself (rio-stac); every item gets the processing extension and
`hrlc:` properties: the product family and the layout fields (`hrlc:year`, `hrlc:period`, `hrlc:sensor`...),
the processor name and version, and the lineage (`hrlc:inputs`: ids of the items it was made from).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import pystac
import rasterio
from rio_stac import create_stac_item

from hrlc import __version__
from hrlc.lake import layout
from hrlc.lake.store import Store

PROCESSING_EXT = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
CLASSIFICATION_EXT = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"

# Product family -> collection id (one collection per family group, as pgstac will hold them).
COLLECTIONS: dict[str, str] = {
    "raw-sentinel2": "hrlc-raw",
    "raw-landsat": "hrlc-raw",
    "raw-sentinel1": "hrlc-raw",
    "optical-composite": "hrlc-optical-composites",
    "optical-cloudmask": "hrlc-optical-composites",
    "sar-composite": "hrlc-sar-composites",
    "sar-feature": "hrlc-sar-composites",
    "coreg-params": "hrlc-coregistration",
    "coreg-composite": "hrlc-coregistration",
    "features": "hrlc-feature-stacks",
    "model-checkpoint": "hrlc-models",
    "model-metadata": "hrlc-models",
    "class-probabilities": "hrlc-class-probabilities",
    "class-map": "hrlc-class-maps",
    "accuracy-report": "hrlc-class-maps",
    "fused-class-map": "hrlc-fused-maps",
    "fused-class-map-region": "hrlc-fused-maps",
    "change-map": "hrlc-change-maps",
    "harmonization-lookup": "hrlc-harmonized-maps",
    "harmonized-class-map": "hrlc-harmonized-maps",
    "graph-result": "hrlc-results",
    "ancillary-layer": "hrlc-ancillary",
    "ancillary-source": "hrlc-ancillary",
}

COLLECTION_TITLES: dict[str, str] = {
    "hrlc-raw": "Raw input scenes copied into the Data Lake",
    "hrlc-optical-composites": "Cloud-free optical composites (Sentinel-2 monthly, Landsat seasonal) and masks",
    "hrlc-sar-composites": "Sentinel-1 monthly backscatter composites and derived layers",
    "hrlc-coregistration": "Optical-SAR co-registration parameters and co-registered composites",
    "hrlc-feature-stacks": "Per-year feature stacks for time-series classification",
    "hrlc-models": "Trained classification models and their metadata",
    "hrlc-class-probabilities": "Per-class probability maps",
    "hrlc-class-maps": "Land-cover class maps in the HRLC legend and their accuracy reports",
    "hrlc-fused-maps": "Decision-fused land-cover maps",
    "hrlc-change-maps": "Land-cover change maps",
    "hrlc-harmonized-maps": "Class maps harmonised to the post-2020 class definitions",
    "hrlc-results": "Results of openEO process graphs (save_result)",
    "hrlc-ancillary": "Ancillary layers (DEM, reference land-cover maps...) clipped to product grids, and uploads",
}


_INT_FIELDS = {"year", "pastYear", "refYear", "year1", "year2"}


def item_id(key: str) -> str:
    """The item id of a product key: its file stem, followed by `_{space}_{config}` when the key carries the
    product's identity (`hrlc.lake.identity`), so items of two AOIs or parameter sets never share an id."""
    stem = PurePosixPath(key).stem
    try:
        fields = layout.parse(key).fields
    except layout.LayoutError:
        return stem
    if "space" in fields and "config" in fields:
        return f"{stem}_{fields['space']}_{fields['config']}"
    return stem


def _lineage_properties(
    key: str, processor: str, processor_version: str, inputs: Sequence[str], properties: Mapping[str, Any]
) -> dict[str, Any]:
    parsed = layout.parse(key)
    props: dict[str, Any] = {
        "hrlc:product": parsed.family,
        **{f"hrlc:{k}": int(v) if k in _INT_FIELDS else v for k, v in parsed.fields.items()},
        "hrlc:processor": processor,
        "hrlc:processor_version": processor_version,
        "hrlc:inputs": list(inputs),
        "processing:software": {"hrlc": __version__, processor: processor_version},
        "processing:lineage": f"{processor} {processor_version} from {len(inputs)} input item(s)",
        "processing:level": "L3",
        "processing:facility": "hrlc",
        "processing:datetime": _now(),
    }
    props.update(properties)
    return props


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def raster_item(
    store: Store,
    key: str,
    *,
    start: dt.datetime,
    end: dt.datetime,
    processor: str,
    processor_version: str,
    inputs: Sequence[str] = (),
    properties: Mapping[str, Any] | None = None,
    roles: Sequence[str] = ("data",),
    classes: Sequence[dict[str, Any]] | None = None,
    extra_assets: Mapping[str, pystac.Asset] | None = None,
) -> pystac.Item:
    """A STAC Item for a COG product already written under `key` (proj, raster, eo from the file)."""
    family = layout.parse(key).family
    props = _lineage_properties(key, processor, processor_version, inputs, properties or {})
    props.update(
        {
            "start_datetime": _iso(start),
            "end_datetime": _iso(end),
        }
    )
    with store.reading(key) as path, rasterio.open(path) as src:  # /vsis3/ range reads on S3
        item = create_stac_item(
            src,
            input_datetime=start + (end - start) / 2,
            collection=COLLECTIONS[family],
            properties=props,
            id=item_id(key),
            asset_name="data",
            asset_roles=list(roles),
            asset_media_type=pystac.MediaType.COG,
            asset_href=store.href(key),
            with_proj=True,
            with_raster=True,
            with_eo=True,
            raster_max_size=512,
        )
        descriptions = list(src.descriptions)
    _name_bands(item.assets["data"], descriptions)
    item.stac_extensions.append(PROCESSING_EXT)
    if classes is not None:
        item.stac_extensions.append(CLASSIFICATION_EXT)
        item.assets["data"].extra_fields["classification:classes"] = list(classes)
    for name, asset in (extra_assets or {}).items():
        item.add_asset(name, asset)
    return item


# STAC common names of hrlc's canonical optical bands (eo:bands `common_name` must come from this list).
_COMMON_NAMES = {"blue", "green", "red", "rededge", "nir", "nir08", "nir09", "swir16", "swir22", "coastal"}


def _name_bands(asset: pystac.Asset, descriptions: list[str | None]) -> None:
    """Name the eo:bands of an asset after the file's band descriptions (rio-stac names them b1, b2...)."""
    for band, desc in zip(asset.extra_fields.get("eo:bands") or [], descriptions, strict=False):
        if desc:
            band["name"] = desc
            if desc in _COMMON_NAMES or desc.startswith("rededge"):
                band["common_name"] = "rededge" if desc.startswith("rededge") else desc


def file_item(
    store: Store,
    key: str,
    *,
    geometry: dict[str, Any],
    bbox: Sequence[float],
    start: dt.datetime,
    end: dt.datetime,
    processor: str,
    processor_version: str,
    media_type: str,
    inputs: Sequence[str] = (),
    properties: Mapping[str, Any] | None = None,
    roles: Sequence[str] = ("data",),
    extra_assets: Mapping[str, pystac.Asset] | None = None,
) -> pystac.Item:
    """A STAC Item for a non-raster product (NetCDF, JSON, model) already written under `key`."""
    family = layout.parse(key).family
    props = _lineage_properties(key, processor, processor_version, inputs, properties or {})
    props.update({"start_datetime": _iso(start), "end_datetime": _iso(end)})
    item = pystac.Item(
        id=item_id(key),
        geometry=geometry,
        bbox=list(bbox),
        datetime=start + (end - start) / 2,
        properties=props,
        collection=COLLECTIONS[family],
        stac_extensions=[PROCESSING_EXT],
    )
    item.add_asset("data", pystac.Asset(href=store.href(key), media_type=media_type, roles=list(roles)))
    for name, asset in (extra_assets or {}).items():
        item.add_asset(name, asset)
    return item


def _iso(t: dt.datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def period_range(year: int, period: str) -> tuple[dt.datetime, dt.datetime]:
    """Start and end (inclusive, to the second) of a layout period of a year, UTC."""
    if period == "annual":
        first, last = 1, 12
    elif period.startswith("season"):
        q = int(period[-1])
        first, last = 3 * q - 2, 3 * q
    else:
        first = last = int(period)
    start = dt.datetime(year, first, 1, tzinfo=dt.UTC)
    end = (
        dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
        if last == 12
        else dt.datetime(year, last + 1, 1, tzinfo=dt.UTC)
    ) - dt.timedelta(seconds=1)
    return start, end
