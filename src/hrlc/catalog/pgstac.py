"""The pgstac catalogue back end: the static STAC JSON in the lake, and every item upserted into pgstac.

The platform's catalogue (`HRLC_CATALOG=postgresql://...`). It is the static back end plus a database:
processors and runners keep reading items by their lake hrefs (`get_href`), so a chain runs unchanged; the
STAC API (`hrlc.api.stac`) serves what is loaded here, and searches, `has_items` and `collections` read it.
Items go in with pypgstac's loader in upsert mode, so adding the same item twice leaves one row. The product
collections (`hrlc.catalog.product_collections`) are created on first use with summaries and `item_assets`;
their extents are recomputed from the items after every load. The `hrlc:` properties used in filters are
registered as pgstac queryables (typed, so `hrlc:year = 2021` compares integers).

The ingest watcher (`hrlc.catalog.ingest`) writes the same collections, items and extents through the
functions of this module (`write_collections`, `pgstac_item`, `update_extents`) inside its own transactions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pystac

from hrlc.catalog.port import BBox
from hrlc.catalog.product_collections import collection_document, collection_ids
from hrlc.catalog.static import StaticCatalog
from hrlc.catalog.visibility import Viewer, restrict
from hrlc.lake.store import Store

__all__ = [
    "QUERYABLES",
    "PgstacCatalog",
    "collection_document",
    "collection_ids",
    "pgstac_db",
    "pgstac_item",
    "update_extents",
    "write_collections",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# `hrlc:` properties worth filtering on, with their JSON types (pgstac queryables).
QUERYABLES: dict[str, dict[str, Any]] = {
    "hrlc:product": {"type": "string", "title": "Product family (Data Lake layout)"},
    "hrlc:year": {"type": "integer", "title": "Year of the product"},
    "hrlc:period": {"type": "string", "title": "Period: 01..12, season1..season4 or annual"},
    "hrlc:sensor": {"type": "string", "title": "Sensor (sentinel2, landsat, sentinel1)"},
    "hrlc:kind": {"type": "string", "title": "Input kind (optical, sar, optical_sar)"},
    "hrlc:processor": {"type": "string", "title": "Processor that wrote the product"},
    "start_datetime": {"type": "string", "format": "date-time", "title": "Start of the period"},
    "end_datetime": {"type": "string", "format": "date-time", "title": "End of the period"},
}
_INDEXED = ["hrlc:product", "hrlc:year"]
PAGE = 10_000  # items per page of a pgstac search


def pgstac_item(item: pystac.Item | dict[str, Any]) -> dict[str, Any]:
    """An item as pgstac stores it: the lake's structural links dropped (the API makes its own)."""
    d = (
        item.to_dict(include_self_link=False, transform_hrefs=False)
        if isinstance(item, pystac.Item)
        else dict(item)
    )
    d["links"] = [
        link for link in d.get("links", []) if link.get("rel") not in {"root", "parent", "collection", "self"}
    ]
    return d


def write_collections(db: Any, *, replace: bool) -> list[str]:
    """Write the product collections into pgstac (`db`: a pypgstac `PgstacDB`), and with them the typed `hrlc:`
    queryables; returns the ids written. `replace`: every collection anew (upsert; its extent is the
    placeholder until `update_extents`), else only the missing ones (existing collections stay as they are).
    Runs in the caller's transaction, if any."""
    from pypgstac.load import Loader, Methods

    conn = db.connect()
    have = set() if replace else {r[0] for r in conn.execute("SELECT id FROM collections").fetchall()}
    docs = [collection_document(cid) for cid in collection_ids() if cid not in have]
    if docs:
        Loader(db).load_collections(iter(docs), insert_mode=Methods.upsert if replace else Methods.ignore)
        with conn.transaction():
            conn.execute(
                "SELECT upsert_queryables(%s::jsonb, NULL, %s::text[], false)",
                [json.dumps({"type": "object", "properties": QUERYABLES}), _INDEXED],
            )
    return [d["id"] for d in docs]


def update_extents(conn: Any, cids: Iterable[str]) -> None:
    """Recompute the spatial/temporal extent of collections from their items (derived data); one statement
    per collection, in the caller's transaction, if any."""
    for cid in sorted(set(cids)):
        conn.execute(
            "UPDATE collections SET content = content || jsonb_build_object('extent', e.x) "
            "FROM (SELECT collection_extent(%s, true) AS x) e WHERE id = %s AND e.x IS NOT NULL",
            [cid, cid],
        )


class PgstacCatalog(StaticCatalog):
    """STAC JSON in the lake (hrefs stay the lake's) and every item upserted into a pgstac database.

    One connection, used by one thread at a time (the openEO API shares one catalogue between its requests)."""

    def __init__(self, store: Store, dsn: str):
        super().__init__(store)
        self.dsn = dsn
        self._lock = threading.RLock()
        self._db: Any = None
        self._ready = False

    # -- database plumbing
    def _connect(self) -> Any:
        with self._lock:
            if self._db is None:
                from psycopg_pool import ConnectionPool

                pool = ConnectionPool(self.dsn, min_size=1, max_size=1, open=True)
                self._db = pgstac_db(self.dsn, pool)
            return self._db

    def _reconnecting(self, fn: Callable[[], T]) -> T:
        """`fn()` (holding the connection); when the database dropped the connection (a restart, an idle
        timeout), once more on a new one. Every call here is a read or an idempotent upsert, so running it
        again is safe."""
        import psycopg

        with self._lock:
            try:
                return fn()
            except psycopg.OperationalError as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                log.warning("catalogue database connection lost (%s): reconnecting once", first)
                return fn()

    def close(self) -> None:
        """Give the connection back (the catalogue reconnects on next use)."""
        with self._lock:
            if self._db is not None:
                self._db.disconnect()
                if self._db.pool is not None:
                    self._db.pool.close()
                self._db = None

    def __enter__(self) -> PgstacCatalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ensure_collections(self) -> None:
        """Create (or update) every product collection and the hrlc queryables; idempotent."""
        with self._lock:
            written = write_collections(self._connect(), replace=True)
            self._update_extents(written)
            self._ready = True

    def _update_extents(self, cids: Iterable[str]) -> None:
        conn = self._connect().connect()
        with conn.transaction():
            update_extents(conn, cids)

    # -- writing
    def add(self, item: pystac.Item) -> str:
        """Write the item's JSON into the lake, upsert it into pgstac; returns its lake href."""
        href = super().add(item)
        self.load([item])
        return href

    def load(self, items: Iterable[pystac.Item | dict[str, Any]]) -> int:
        """Upsert items into pgstac only (not into the lake); returns how many. Idempotent."""
        from pypgstac.load import Loader, Methods

        dicts = [pgstac_item(i) if isinstance(i, pystac.Item) else i for i in items]
        if not dicts:
            return 0
        for d in dicts:
            if not d.get("collection"):
                raise ValueError(f"item {d.get('id')} has no collection")

        def load() -> None:
            if not self._ready:
                self.ensure_collections()
            Loader(self._connect()).load_items(iter(dicts), insert_mode=Methods.upsert)
            self._update_extents(d["collection"] for d in dicts)

        self._reconnecting(load)
        return len(dicts)

    # -- reading (database side; the lake side is inherited)
    def _fetchall(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self._reconnecting(lambda: list(self._connect().connect().execute(sql, params).fetchall()))

    def _search_page(self, body: dict[str, Any]) -> dict[str, Any]:
        """One page of pgstac's `search` (a FeatureCollection; `next` is the token of the next page)."""
        rows = self._connect().connect().execute("SELECT search(%s::jsonb)", [json.dumps(body)]).fetchall()
        return _obj(rows[0][0]) if rows and rows[0][0] else {}

    def count(self, collection: str | None = None) -> int:
        """Items in pgstac (of one collection, or all)."""
        if collection is None:
            rows = self._fetchall("SELECT count(*) FROM items")
        else:
            rows = self._fetchall("SELECT count(*) FROM items WHERE collection = %s", [collection])
        return int(rows[0][0]) if rows else 0

    def search(
        self,
        collection: str,
        bbox: BBox | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[pystac.Item]:
        """Items of `collection` intersecting `bbox` (lon/lat) and [start, end), by time (pgstac `search`);
        with `limit`, only the latest `limit` of them (read newest first, one page)."""
        from hrlc.catalog.sources import item_matches

        order = "desc" if limit else "asc"
        body = _search_body(collection, min(limit, PAGE) if limit else PAGE, bbox, start, end)
        body["sortby"] = [{"field": "datetime", "direction": order}, {"field": "id", "direction": order}]

        def search() -> list[pystac.Item]:
            items: list[pystac.Item] = []
            page_body = dict(body)
            while True:
                page = self._search_page(page_body)
                found = (pystac.Item.from_dict(f, preserve_dict=False) for f in page.get("features") or [])
                items += [i for i in found if item_matches(i, None, start, end)]  # end is exclusive
                token = page.get("next")  # pgstac's paging token of the next page
                if limit and len(items) >= limit:
                    return items[:limit][::-1]
                if not token:
                    return items[::-1] if limit else items
                page_body["token"] = f"next:{token}"

        return self._reconnecting(search)

    def has_items(
        self,
        collection: str,
        bbox: BBox | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        viewer: Viewer | None = None,
    ) -> bool:
        """Whether `collection` has an item intersecting `bbox` and the time range that `viewer` may see: one
        pgstac `search` of one item, the visibility rule as its CQL2-JSON filter (pgstac's time range includes
        `end`: an item that starts at `end` counts)."""
        if viewer is not None and not viewer.may_read_collection(collection):
            return False  # anonymous, and not published (no query: pgstac refuses the rule's empty `in`)
        body = _search_body(collection, 1, bbox, start, end)
        visible = restrict(None, viewer) if viewer is not None else None
        if visible is not None:
            body["filter"], body["filter-lang"] = visible, "cql2-json"
        return self._reconnecting(lambda: bool(self._search_page(body).get("features")))

    def collection_ids(self) -> list[str]:
        """Collections that hold at least one item."""
        return [r[0] for r in self._fetchall("SELECT DISTINCT collection FROM items ORDER BY 1")]

    def collections(self) -> list[dict[str, Any]]:
        """pgstac's collections (what the STAC API serves, extents from the items), sorted by id."""
        return [_obj(r[0]) for r in self._fetchall("SELECT content FROM collections ORDER BY id")]


def _search_body(
    collection: str, limit: int, bbox: BBox | None, start: dt.datetime | None, end: dt.datetime | None
) -> dict[str, Any]:
    """The body of a pgstac `search` of one collection in a lon/lat bbox and a time range (None: open)."""
    body: dict[str, Any] = {"collections": [collection], "limit": limit}
    if bbox is not None:
        body["bbox"] = list(bbox)
    if start is not None or end is not None:
        body["datetime"] = "/".join(t.isoformat() if t else ".." for t in (start, end))
    return body


def _obj(value: Any) -> dict[str, Any]:
    """A jsonb value as psycopg returns it (a dict, or its text)."""
    return json.loads(value) if isinstance(value, str | bytes) else dict(value)


def pgstac_db(dsn: str, pool: Any, **kwargs: Any) -> Any:
    """pypgstac's `PgstacDB` on `pool`, made to survive a dropped connection: pypgstac keeps a broken connection
    checked out and asks the pool for another, which a pool of one never gives (PoolTimeout after 30 s, retried);
    here the broken one goes back to the pool first (which discards it and connects anew)."""
    from pypgstac.db import PgstacDB

    class _PgstacDB(PgstacDB):
        def connect(self) -> Any:
            conn = self.connection
            if conn is not None and (conn.closed or conn.broken) and self.pool is not None:
                self.connection = None
                with contextlib.suppress(Exception):  # not the pool's any more: nothing to give back
                    self.pool.putconn(conn)
            return super().connect()

    return _PgstacDB(dsn=dsn, pool=pool, **kwargs)
