"""STAC Items for every product hrlc writes into the Data Lake.

An item's id is the product's file stem (unique in its collection, since the layout puts the year and
period in every name), its collection the product family's collection. Raster products get the projection,
raster and eo extensions from the file itself (rio-stac); every item gets the processing extension and
`hrlc:` properties: the product family and the layout fields (`hrlc:year`, `hrlc:period`, `hrlc:sensor`...),
the processor name and version, and the lineage (`hrlc:inputs`: ids of the items it was made from).

Item ids (`item_id`) and the collection of each family (`COLLECTIONS`, `COLLECTION_TITLES`) are named by the
lake (`hrlc.lake.layout`, `hrlc.lake.stac_collections`), a period's time range by `hrlc.periods.period_range`;
they are re-exported here for older imports.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pystac
import rasterio
from rio_stac import create_stac_item

from hrlc import __version__
from hrlc.lake import layout
from hrlc.lake.layout import item_id as item_id
from hrlc.lake.stac_collections import COLLECTION_TITLES as COLLECTION_TITLES
from hrlc.lake.stac_collections import COLLECTIONS as COLLECTIONS
from hrlc.lake.store import Store
from hrlc.periods import period_range as period_range

PROCESSING_EXT = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
CLASSIFICATION_EXT = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"
PROJECTION_EXT = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
_PROJECTION_V1 = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"

_INT_FIELDS = {"year", "pastYear", "refYear", "year1", "year2"}


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
    _projection_v2(item)
    item.stac_extensions.append(PROCESSING_EXT)
    if classes is not None:
        item.stac_extensions.append(CLASSIFICATION_EXT)
        item.assets["data"].extra_fields["classification:classes"] = list(classes)
    for name, asset in (extra_assets or {}).items():
        item.add_asset(name, asset)
    return item


def _projection_v2(item: pystac.Item) -> None:
    """One version of the projection extension in every item of hrlc (v2.0.0, as the feature stacks'): rio-stac
    writes v1.1.0's `proj:epsg`, which v2.0.0 names `proj:code` ("EPSG:n")."""
    epsg = item.properties.pop("proj:epsg", None)
    if epsg is not None:
        item.properties["proj:code"] = f"EPSG:{epsg}"
    item.stac_extensions = [PROJECTION_EXT if e == _PROJECTION_V1 else e for e in item.stac_extensions]


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
