"""The static STAC catalogue back end: STAC JSON files in the lake under `metadata/stac/`.

The embedded default. Layout: `metadata/stac/catalog.json` (root), `metadata/stac/{collection}/collection.json`
and `metadata/stac/{collection}/{item_id}.json`. Adding an item is idempotent (same id = same file, replaced);
collection extents grow to cover their items. Readable by pystac, pystac-client's static mode, STAC Browser.
Searches read the item JSON of a collection (a scan): fine for the lake of one machine. `collections()` are
the built-in product collection documents (`hrlc.catalog.product_collections`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pystac

from hrlc.catalog.port import BBox
from hrlc.catalog.product_collections import STAC_VERSION, collection_document
from hrlc.catalog.product_collections import collection_ids as product_collection_ids
from hrlc.catalog.visibility import Viewer, visible
from hrlc.lake import layout
from hrlc.lake.stac_collections import COLLECTION_TITLES
from hrlc.lake.store import Store

ROOT_KEY = "metadata/stac/catalog.json"


class StaticCatalog:
    """STAC JSON in the lake."""

    def __init__(self, store: Store):
        self.store = store

    def close(self) -> None:
        """Nothing to release: the catalogue is files in the lake."""

    # -- writing
    def add(self, item: pystac.Item) -> str:
        """Write (or replace) an item and register it in its collection; returns the item's href."""
        if not item.collection_id:
            raise ValueError(f"item {item.id} has no collection")
        key = layout.key("stac-item", collection=item.collection_id, item_id=item.id)
        d = item.to_dict(include_self_link=False, transform_hrefs=False)
        d["links"] = [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "./collection.json", "type": "application/json"},
            {"rel": "collection", "href": "./collection.json", "type": "application/json"},
            {"rel": "self", "href": self.store.href(key), "type": "application/geo+json"},
        ] + [
            link
            for link in d.get("links", [])
            if link.get("rel") not in {"root", "parent", "collection", "self"}
        ]
        self.store.write_bytes(key, json.dumps(d, indent=1).encode())
        self._register(item)
        return self.store.href(key)

    def _register(self, item: pystac.Item) -> None:
        cid = item.collection_id
        assert cid is not None
        ckey = f"metadata/stac/{cid}/collection.json"
        coll = json.loads(self.store.read_bytes(ckey)) if self.store.exists(ckey) else _new_collection(cid)
        bbox = list(item.bbox or [])
        start = item.properties.get("start_datetime") or item.properties.get("datetime")
        end = item.properties.get("end_datetime") or item.properties.get("datetime")
        ext = coll["extent"]
        if ext["spatial"]["bbox"][0] is None:
            ext["spatial"]["bbox"] = [bbox]
            ext["temporal"]["interval"] = [[start, end]]
        else:
            old = ext["spatial"]["bbox"][0]
            ext["spatial"]["bbox"] = [
                [min(old[0], bbox[0]), min(old[1], bbox[1]), max(old[2], bbox[2]), max(old[3], bbox[3])]
            ]
            t0, t1 = ext["temporal"]["interval"][0]
            ext["temporal"]["interval"] = [[min(t0, start), max(t1, end)]]
        item_link = {"rel": "item", "href": f"./{item.id}.json", "type": "application/geo+json"}
        if item_link not in coll["links"]:
            coll["links"].append(item_link)
        self.store.write_bytes(ckey, json.dumps(coll, indent=1).encode())
        root = json.loads(self.store.read_bytes(ROOT_KEY)) if self.store.exists(ROOT_KEY) else _new_root()
        child = {"rel": "child", "href": f"./{cid}/collection.json", "type": "application/json"}
        if child not in root["links"]:
            root["links"].append(child)
            self.store.write_bytes(ROOT_KEY, json.dumps(root, indent=1).encode())

    # -- reading
    def get(self, collection: str, item_id: str) -> pystac.Item | None:
        key = layout.key("stac-item", collection=collection, item_id=item_id)
        if not self.store.exists(key):
            return None
        return pystac.Item.from_dict(json.loads(self.store.read_bytes(key)), preserve_dict=False)

    def get_href(self, href: str) -> pystac.Item:
        """The item at an href this catalogue returned."""
        key = self.store.key_of(href)
        return pystac.Item.from_dict(json.loads(self.store.read_bytes(key)), preserve_dict=False)

    def href(self, item: pystac.Item) -> str:
        assert item.collection_id is not None
        return self.store.href(layout.key("stac-item", collection=item.collection_id, item_id=item.id))

    def items(self, collection: str | None = None) -> Iterator[pystac.Item]:
        prefix = f"metadata/stac/{collection}/" if collection else "metadata/stac/"
        for key in self.store.list(prefix):
            if key.endswith(".json") and not key.endswith(("collection.json", "catalog.json")):
                yield pystac.Item.from_dict(json.loads(self.store.read_bytes(key)), preserve_dict=False)

    def collection_ids(self) -> list[str]:
        """Collections that hold at least one item."""
        root = json.loads(self.store.read_bytes(ROOT_KEY)) if self.store.exists(ROOT_KEY) else _new_root()
        return [ln["href"].split("/")[1] for ln in root["links"] if ln.get("rel") == "child"]

    def search(
        self,
        collection: str,
        bbox: BBox | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[pystac.Item]:
        """Items of `collection` intersecting `bbox` (lon/lat) and [start, end) (None: open), by time;
        with `limit`, only the latest `limit` of them."""
        from hrlc.catalog.sources import item_matches, item_sort_key

        found = sorted(
            (i for i in self.items(collection) if item_matches(i, bbox, start, end)), key=item_sort_key
        )
        return found[-limit:] if limit else found

    def has_items(
        self,
        collection: str,
        bbox: BBox | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        viewer: Viewer | None = None,
    ) -> bool:
        """Whether `collection` has an item intersecting `bbox` and [start, end) that `viewer` may see."""
        from hrlc.catalog.sources import item_matches

        return any(
            item_matches(i, bbox, start, end)
            and (viewer is None or visible(i.collection_id, i.properties, viewer))
            for i in self.items(collection)
        )

    def collections(self) -> list[dict[str, Any]]:
        """The built-in documents of the product collections (`hrlc.catalog.product_collections`)."""
        return [collection_document(cid) for cid in product_collection_ids()]


def _new_collection(cid: str) -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "id": cid,
        "title": COLLECTION_TITLES.get(cid, cid),
        "description": COLLECTION_TITLES.get(cid, cid),
        "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [None]}, "temporal": {"interval": [[None, None]]}},
        "links": [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        ],
    }


def _new_root() -> dict[str, Any]:
    return {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": "hrlc",
        "title": "hrlc Data Lake",
        "description": "Products of the CCI High Resolution Land Cover processing chain",
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}],
    }
