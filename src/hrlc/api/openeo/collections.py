"""openEO collections: the catalogue's STAC collections with the openEO data-cube metadata added.

The collections come from pgstac (`HRLC_CATALOG`, the database the STAC API serves) or, with the static
catalogue, from hrlc's product collection documents. Each gets `cube:dimensions` (x and y in the
collection's lon/lat extent, t from its temporal extent, bands from the `eo:bands` of its items) and
`summaries` (`eo:bands` when known), which is what an openEO client builds its cube metadata from (and checks
the `bands` of `load_collection` against).

A collection can hold several products with different bands (e.g. `hrlc-optical-composites`: the composites
and their cloud masks), so the bands are those of a sample of its items (`SAMPLE_ITEMS`): the bands of the
most frequent product first (of equally frequent ones, the one with more bands: the composite, not its mask),
then the others' not yet listed.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hrlc.api.openeo.errors import OpenEOError
from hrlc.catalog.pgstac import collection_document, collection_ids
from hrlc.catalog.static import STAC_VERSION

DATACUBE_EXT = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"


class CollectionSource:
    """Reads STAC collections (and one sample item per collection) from pgstac or the built-in documents."""

    def __init__(self, dsn: str | None):
        self.dsn = dsn

    def _query(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        import psycopg

        assert self.dsn is not None
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("SET search_path TO pgstac, public")
            return list(conn.execute(sql, params).fetchall())

    def all(self) -> list[dict[str, Any]]:
        if self.dsn is None:
            return [collection_document(cid) for cid in collection_ids()]
        return [_obj(row[0]) for row in self._query("SELECT content FROM collections ORDER BY id", [])]

    def get(self, cid: str) -> dict[str, Any] | None:
        if self.dsn is None:
            return collection_document(cid) if cid in collection_ids() else None
        rows = self._query("SELECT content FROM collections WHERE id = %s", [cid])
        return _obj(rows[0][0]) if rows else None

    def exists(self, cid: str) -> bool:
        return self.get(cid) is not None

    def sample_items(self, cid: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Up to `limit` items of a collection (their assets only), newest first; [] without pgstac."""
        if self.dsn is None:
            return []
        search = {"collections": [cid], "limit": limit or SAMPLE_ITEMS, "fields": {"include": ["assets"]}}
        rows = self._query("SELECT search(%s::jsonb)", [json.dumps(search)])
        return list(_obj(rows[0][0]).get("features") or []) if rows else []


SAMPLE_ITEMS = 100


def _obj(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str | bytes) else dict(value)


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


def get_collection(source: CollectionSource, cid: str, base: str) -> dict[str, Any]:
    stac = source.get(cid)
    if stac is None:
        raise OpenEOError("CollectionNotFound", f"Collection '{cid}' does not exist.")
    return openeo_collection(stac, base, source.sample_items(cid))
