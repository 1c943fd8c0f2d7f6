"""openEO collections: the catalogue's STAC collections with the openEO data-cube metadata added.

The collections and sample items come from the catalogue (`hrlc.catalog.port.Catalog`): with pgstac the
collections the STAC API serves, with the static catalogue hrlc's product collection documents. Each gets
`cube:dimensions` (x and y in the collection's lon/lat extent, t from its temporal extent, bands from the
`eo:bands` of its items) and `summaries` (`eo:bands` when known), which is what an openEO client builds its
cube metadata from (and checks the `bands` of `load_collection` against).

A collection can hold several products with different bands (e.g. `hrlc-optical-composites`: the composites
and their cloud masks), so the bands are those of a sample of its items (`SAMPLE_ITEMS`): the bands of the
most frequent product first (of equally frequent ones, the one with more bands: the composite, not its mask),
then the others' not yet listed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hrlc.api.openeo.errors import OpenEOError
from hrlc.catalog.port import Catalog
from hrlc.catalog.product_collections import STAC_VERSION

DATACUBE_EXT = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"
SAMPLE_ITEMS = 100


def stac_collection(catalog: Catalog, cid: str) -> dict[str, Any] | None:
    """The STAC collection `cid` of the catalogue, or None."""
    return next((c for c in catalog.collections() if c.get("id") == cid), None)


def sample_items(catalog: Catalog, cid: str, limit: int = SAMPLE_ITEMS) -> list[dict[str, Any]]:
    """Up to `limit` items of a collection, newest first (as dicts)."""
    latest = catalog.search(cid, limit=limit)
    return [i.to_dict(include_self_link=False, transform_hrefs=False) for i in reversed(latest)]


def _bands(item: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not item:
        return []
    for asset in (item.get("assets") or {}).values():
        bands = asset.get("eo:bands") or asset.get("bands")
        if bands:
            return [b for b in bands if isinstance(b, dict) and b.get("name")]
    return []


def collection_bands(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bands of a collection's items: the most frequent band list first (of equally frequent ones the
    longer), then the bands of the others not yet listed."""
    by_signature: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    count: Counter[tuple[str, ...]] = Counter()
    for item in items:
        bands = _bands(item)
        if bands:
            sig = tuple(str(b["name"]) for b in bands)
            by_signature.setdefault(sig, bands)
            count[sig] += 1
    out: dict[str, dict[str, Any]] = {}
    for sig in sorted(count, key=lambda sig: (count[sig], len(sig)), reverse=True):  # ties: more bands first
        for band in by_signature[sig]:
            out.setdefault(str(band["name"]), band)
    return list(out.values())


def openeo_collection(
    stac: dict[str, Any], base: str, sample: dict[str, Any] | list[dict[str, Any]] | None
) -> dict[str, Any]:
    """An openEO collection document from a STAC collection (`base`: the openEO API root URL; `sample`: items
    of the collection, or one, whose bands the cube has)."""
    c = {k: v for k, v in stac.items() if k not in {"links"}}
    cid = c["id"]
    c.setdefault("type", "Collection")
    c["stac_version"] = STAC_VERSION
    exts = [e for e in c.get("stac_extensions") or [] if "datacube" not in e]
    c["stac_extensions"] = [*exts, DATACUBE_EXT]
    c.setdefault("description", c.get("title") or cid)
    c.setdefault("license", "proprietary")
    extent = c.setdefault("extent", {})
    bbox = ((extent.get("spatial") or {}).get("bbox") or [[-180.0, -90.0, 180.0, 90.0]])[0]
    interval = ((extent.get("temporal") or {}).get("interval") or [[None, None]])[0]
    extent.setdefault("spatial", {"bbox": [bbox]})
    extent.setdefault("temporal", {"interval": [interval]})
    bands = collection_bands(sample if isinstance(sample, list) else [sample] if sample else [])
    band_names = [str(b["name"]) for b in bands] or ["data"]
    c["cube:dimensions"] = {
        "x": {"type": "spatial", "axis": "x", "extent": [bbox[0], bbox[2]], "reference_system": 4326},
        "y": {"type": "spatial", "axis": "y", "extent": [bbox[1], bbox[3]], "reference_system": 4326},
        "t": {"type": "temporal", "extent": list(interval[:2])},
        "bands": {"type": "bands", "values": band_names},
    }
    summaries = dict(c.get("summaries") or {})
    if bands:
        summaries["eo:bands"] = bands
    c["summaries"] = summaries
    c["links"] = [
        {"rel": "self", "href": f"{base}/collections/{cid}", "type": "application/json"},
        {"rel": "root", "href": f"{base}/", "type": "application/json"},
        {"rel": "parent", "href": f"{base}/collections", "type": "application/json"},
        {
            "rel": "items",
            "href": f"{_stac_base(base)}/collections/{cid}/items",
            "type": "application/geo+json",
        },
    ]
    return c


def _stac_base(base: str) -> str:
    """The STAC API next to the openEO API (`.../openeo` → `.../stac`)."""
    return base.rsplit("/", 1)[0] + "/stac" if base.endswith("/openeo") else base


def get_collection(catalog: Catalog, cid: str, base: str) -> dict[str, Any]:
    """The openEO collection document of `cid` (404 `CollectionNotFound` if the catalogue has no such one)."""
    stac = stac_collection(catalog, cid)
    if stac is None:
        raise OpenEOError("CollectionNotFound", f"Collection '{cid}' does not exist.")
    return openeo_collection(stac, base, sample_items(catalog, cid))
