"""The catalogue port: what every part of hrlc may ask of the STAC catalogue, whichever back end holds it.

Two back ends implement it: `StaticCatalog` (STAC JSON in the lake, the embedded default) and `PgstacCatalog`
(the same JSON plus every item in pgstac, the platform). Processors register and read items through it, graph
evaluations search it, the openEO API lists its collections and checks that a request has data in it. The
composition root (`hrlc.backends`) chooses the back end; nothing below it opens a catalogue by itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import pystac

from hrlc.catalog.visibility import Viewer

BBox = tuple[float, float, float, float]


class Catalog(Protocol):
    """A STAC catalogue of the lake's products."""

    def add(self, item: pystac.Item) -> str:
        """Write (or replace) an item; returns its href. Idempotent."""
        ...

    def get(self, collection: str, item_id: str) -> pystac.Item | None:
        """The item `item_id` of `collection`, or None."""
        ...

    def get_href(self, href: str) -> pystac.Item:
        """The item at an href this catalogue returned."""
        ...

    def href(self, item: pystac.Item) -> str:
        """Where the catalogue keeps `item`."""
        ...

    def search(
        self,
        collection: str,
        bbox: BBox | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[pystac.Item]:
        """Items of `collection` intersecting `bbox` (lon/lat) and [start, end) (None: open), by time;
        with `limit`, only the latest `limit` of them (a sample that does not read the whole collection)."""
        ...

    def has_items(
        self,
        collection: str,
        bbox: BBox | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        viewer: Viewer | None = None,
    ) -> bool:
        """Whether `collection` has at least one item intersecting `bbox` and the time range (None: open)
        that `viewer` may see (`hrlc.catalog.visibility`; None: any item)."""
        ...

    def collection_ids(self) -> list[str]:
        """Collections that hold at least one item."""
        ...

    def collections(self) -> list[dict[str, Any]]:
        """The STAC Collection documents the catalogue serves, sorted by id."""
        ...

    def close(self) -> None:
        """Release connections (a no-op for the static catalogue)."""
        ...
