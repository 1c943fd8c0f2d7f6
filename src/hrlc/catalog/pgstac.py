"""The pgstac catalogue back end: the static STAC JSON in the lake, and every item upserted into pgstac.

The platform's catalogue (`HRLC_CATALOG=postgresql://...`). It is the static back end plus a database:
processors and runners keep reading items by their lake hrefs (`get_href`), so a chain runs unchanged; the
STAC API (`hrlc.api.stac`) serves what is loaded here. Items go in with pypgstac's loader in upsert mode, so
adding the same item twice leaves one row. The product collections (one per family group of
`hrlc.catalog.items.COLLECTIONS`) are created on first use with summaries and `item_assets`; their extents
are recomputed from the items after every load. The `hrlc:` properties used in filters are registered as
pgstac queryables (typed, so `hrlc:year = 2021` compares integers).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pystac

from hrlc.catalog.items import COLLECTION_TITLES, COLLECTIONS
from hrlc.catalog.static import STAC_VERSION, StaticCatalog
from hrlc.lake.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

# Media type of the `data` asset of each family (for the collections' item_assets).
_FAMILY_MEDIA: dict[str, str] = {
    "features": "application/netcdf",
    "model-checkpoint": "application/octet-stream",
    "model-metadata": "application/json",
    "accuracy-report": "application/json",
    "coreg-params": "application/json",
    "harmonization-lookup": "application/json",
}
_COG = pystac.MediaType.COG.value

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


def collection_document(cid: str) -> dict[str, Any]:
    """The STAC Collection of one product collection (extent is a placeholder until items arrive)."""
    families = sorted(f for f, c in COLLECTIONS.items() if c == cid)
    media = sorted({_FAMILY_MEDIA.get(f, _COG) for f in families})
    data_asset: dict[str, Any] = {"title": "Product file", "roles": ["data"]}
    if len(media) == 1:
        data_asset["type"] = media[0]
    title = COLLECTION_TITLES.get(cid, cid)
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": cid,
        "title": title,
        "description": f"{title}. Products of the ESA CCI High Resolution Land Cover processing chain (hrlc).",
        "keywords": ["land cover", "ESA CCI", "HRLC", *families],
        "license": "CC-BY-4.0",
        "providers": [{"name": "hrlc", "roles": ["processor", "producer", "host"]}],
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [[None, None]]},
        },
        "summaries": {"hrlc:product": families},
        "item_assets": {"data": data_asset},
        "links": [],
    }


def collection_ids() -> list[str]:
    """Every product collection id, in a stable order."""
    return sorted(set(COLLECTIONS.values()))


def pgstac_item(item: pystac.Item) -> dict[str, Any]:
    """An item as pgstac stores it: the lake's structural links dropped (the API makes its own)."""
    d = item.to_dict(include_self_link=False, transform_hrefs=False)
    d["links"] = [
        link for link in d.get("links", []) if link.get("rel") not in {"root", "parent", "collection", "self"}
    ]
    return d


class PgstacCatalog(StaticCatalog):
    """STAC JSON in the lake (hrefs stay the lake's) and every item upserted into a pgstac database."""

    def __init__(self, store: Store, dsn: str):
        super().__init__(store)
        self.dsn = dsn
        self._lock = threading.RLock()
        self._db: Any = None
        self._ready = False

    # -- database plumbing
    def _connect(self) -> Any:
        if self._db is None:
            from psycopg_pool import ConnectionPool

            pool = ConnectionPool(self.dsn, min_size=1, max_size=1, open=True)
            self._db = pgstac_db(self.dsn, pool)
        return self._db

    def _reconnecting(self, fn: Callable[[], T]) -> T:
        """`fn()`; when the database dropped the connection (a restart, an idle timeout), once more on a new one.
        Every call here is a read or an idempotent upsert, so running it again is safe."""
        import psycopg

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
        from pypgstac.load import Loader, Methods

        db = self._connect()
        docs = [collection_document(cid) for cid in collection_ids()]
        Loader(db).load_collections(iter(docs), insert_mode=Methods.upsert)
        conn = db.connect()
        with conn.transaction():
            conn.execute(
                "SELECT upsert_queryables(%s::jsonb, NULL, %s::text[], false)",
                [_json({"type": "object", "properties": QUERYABLES}), _INDEXED],
            )
        self._update_extents([d["id"] for d in docs])
        self._ready = True

    def _update_extents(self, cids: Iterable[str]) -> None:
        conn = self._connect().connect()
        with conn.transaction():
            for cid in sorted(set(cids)):
                conn.execute(
                    "UPDATE collections SET content = content || jsonb_build_object('extent', e.x) "
                    "FROM (SELECT collection_extent(%s, true) AS x) e WHERE id = %s AND e.x IS NOT NULL",
                    [cid, cid],
                )

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

        with self._lock:
            self._reconnecting(load)
        return len(dicts)

    # -- reading (database side; the lake side is inherited)
    def count(self, collection: str | None = None) -> int:
        """Items in pgstac (of one collection, or all)."""

        def count() -> Any:
            conn = self._connect().connect()
            if collection is None:
                return conn.execute("SELECT count(*) FROM items").fetchone()
            return conn.execute("SELECT count(*) FROM items WHERE collection = %s", [collection]).fetchone()

        row = self._reconnecting(count)
        return int(row[0]) if row else 0

    def search(
        self,
        collection: str,
        bbox: tuple[float, float, float, float] | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> list[pystac.Item]:
        """Items of `collection` intersecting `bbox` (lon/lat) and [start, end), by time (pgstac `search`)."""
        from hrlc.catalog.sources import item_matches

        body: dict[str, Any] = {"collections": [collection], "limit": 10_000, "sortby": [
            {"field": "datetime", "direction": "asc"}, {"field": "id", "direction": "asc"}]}  # fmt: skip
        if bbox is not None:
            body["bbox"] = list(bbox)
        if start is not None or end is not None:
            body["datetime"] = "/".join(t.isoformat() if t else ".." for t in (start, end))

        def search() -> list[pystac.Item]:
            conn = self._connect().connect()
            items: list[pystac.Item] = []
            page_body = dict(body)
            while True:
                row = conn.execute("SELECT search(%s::jsonb)", [_json(page_body)]).fetchone()
                page = row[0] if row else {}
                items += [pystac.Item.from_dict(f, preserve_dict=False) for f in page.get("features") or []]
                token = page.get("next")  # pgstac's paging token of the next page
                if not token:
                    return [i for i in items if item_matches(i, None, start, end)]  # end is exclusive
                page_body["token"] = f"next:{token}"

        return self._reconnecting(search)

    def collection_ids(self) -> list[str]:
        """Collections that hold at least one item."""

        def ids() -> list[str]:
            conn = self._connect().connect()
            return [r[0] for r in conn.execute("SELECT DISTINCT collection FROM items ORDER BY 1").fetchall()]

        return self._reconnecting(ids)


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


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
