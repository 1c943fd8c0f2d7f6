"""The ingest watcher (spec §3.3 steps 1–4): objects in the Data Lake -> STAC Items in pgstac.

1. **Notice** new or changed objects: poll `list_info` of the lake (S3: ETag and size from ListObjectsV2;
   local: mtime and size) and compare with a durable checkpoint in PostgreSQL, `hrlc.ingest_state` (one row per
   lake object: its ETag, the item it became, status `loaded` / `error` / `skipped` / `harvested`).
2. **Extract** metadata from each new object: rasters through rio-stac (projection, raster, eo, read from
   the file, so a corrupt COG fails here), NetCDF feature stacks from their ACDD bounds, JSON products
   parsed, the layout (`hrlc.lake.layout.parse`) for product family, year and period. If the chain already
   wrote the product's STAC Item into the lake (`metadata/stac/{collection}/{id}.json`, with lineage), that
   richer item is loaded instead, once the file itself has been read successfully. Objects outside the layout
   (and logs) are recorded as `skipped`.
3. **Create** the item (id = file stem, collection of the family, `hrlc:` properties).
4. **Load** it into pgstac with pypgstac's loader (upsert; collections and items as the catalogue back end
   `hrlc.catalog.pgstac` writes them) — in the SAME transaction as the checkpoint rows of its batch. A
   watcher killed mid-batch loses the whole batch's transaction, and the next run redoes it: no object is
   lost and no item is duplicated (ids are unique per collection anyway; upsert). A corrupt object gets
   status `error` with the message and no item; it is retried only when its ETag changes.

One watcher (or harvest) works on a lake at a time: each scan holds a PostgreSQL advisory lock of the lake's
URL, so two watchers (or a watcher and a harvest) never interleave their batches.

Why polling and not S3 event notifications: a poll with a checkpoint is correct on every store (local
folder, MinIO, AWS, moto) and catches up after any downtime by itself, whereas notifications need a queue
per deployment (SQS, or MinIO's AMQP/webhook targets), are at-least-once and unordered, and are lost for
objects written while the queue or the consumer is down — a periodic full listing would still be needed as
the safety net. The poll is cheap (one LIST page per 1 000 objects, one indexed SELECT of the checkpoint).

Run: `hrlc ingest watch [--once] [--interval 10]` or `python -m hrlc.catalog.ingest_cli --store URL --dsn DSN`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import PurePosixPath
from typing import Any

import pystac

from hrlc import __version__
from hrlc.catalog import items as product_items
from hrlc.catalog.pgstac import pgstac_db, pgstac_item, update_extents, write_collections
from hrlc.db import migrations
from hrlc.lake import layout
from hrlc.lake.stac_collections import COLLECTIONS
from hrlc.lake.store import ObjectInfo, Store, StoreError
from hrlc.outage import Outage
from hrlc.periods import ANNUAL, period_range

log = logging.getLogger(__name__)

PROCESSOR = "hrlc-ingest"
"""`hrlc:processor` of items the watcher makes from a file alone (no item written by the chain)."""

GLOBAL_BBOX = (-180.0, -90.0, 180.0, 90.0)
NOT_INGESTED_FAMILIES = frozenset({"log"})
RASTER_SUFFIXES = frozenset({".tif", ".tiff"})
DEFAULT_BATCH = 1000
"""Objects per transaction: pypgstac's loader has a fixed cost per call (partition check, temporary
table, lock, partition statistics), so small batches load slowly (see docs/performance.md); a crash
redoes at most one batch."""

COMPONENT = "ingest"
CONNECT_TIMEOUT_S = 10
MIGRATIONS = resources.files("hrlc.catalog") / "migrations"  # the checkpoint table; applied by `hrlc migrate`

_UPSERT_STATE = """
INSERT INTO hrlc.ingest_state AS s (store, key, etag, size, item_id, collection, status, error, ingested_at)
SELECT DISTINCT ON (store, key) store, key, etag, size, item_id, collection, status, error, now()
FROM ingest_state_in
ON CONFLICT (store, key) DO UPDATE SET
    etag = EXCLUDED.etag, size = EXCLUDED.size, item_id = EXCLUDED.item_id,
    collection = EXCLUDED.collection, status = EXCLUDED.status, error = EXCLUDED.error,
    ingested_at = EXCLUDED.ingested_at
"""


# ------------------------------------------------------------------------------------------- the lake side


def list_objects(store: Store, prefix: str = "") -> Iterator[ObjectInfo]:
    """Every object under `prefix` with its change token: the ETag on S3 (from the LIST pages, no HEAD per
    object), mtime and size locally (`Store.list_info`)."""
    return store.list_info(prefix)


def stat_object(store: Store, key: str) -> ObjectInfo | None:
    """The listing entry of one key (None if it does not exist), with the same token `list_objects` gives."""
    for info in list_objects(store, key):
        if info.key == key:
            return info
    return None


# ------------------------------------------------------------------------------------------ the item side


class IngestError(Exception):
    """An object that cannot become an item (corrupt, unreadable, inconsistent)."""


@dataclass
class Outcome:
    """What ingest made of one object: an item to load, or a reason to skip or report it."""

    info: ObjectInfo
    status: str
    item: dict[str, Any] | None = None
    error: str | None = None
    item_id: str | None = None
    collection: str | None = None

    def __post_init__(self) -> None:
        if self.item is not None:
            self.item_id = self.item_id or str(self.item["id"])
            self.collection = self.collection or str(self.item["collection"])


def _time_range(fields: dict[str, str], mtime: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    year = fields.get("year") or fields.get("year2") or fields.get("pastYear")
    if year is None:  # models: no year in the name; the object's time stands for the product's
        t = mtime.replace(microsecond=0)
        return t, t
    period = fields.get("period") or fields.get("month") or fields.get("season") or ANNUAL
    return period_range(int(year), period)


def _lake_json(store: Store, collection: str, item_id: str) -> dict[str, Any] | None:
    """The item the chain wrote into the lake for a product, if any (it carries the lineage)."""
    try:
        k = layout.key("stac-item", collection=collection, item_id=item_id)
    except layout.LayoutError:
        return None
    if not store.exists(k):
        return None
    try:
        d = json.loads(store.read_bytes(k))
    except (ValueError, FileNotFoundError):
        return None
    if d.get("type") != "Feature" or d.get("id") != item_id or d.get("collection") != collection:
        return None
    return d


class ItemBuilder:
    """Builds the STAC Item of one lake object (`build`), or raises IngestError."""

    def __init__(self, store: Store, extent: Callable[[int | None], Sequence[float]] | None = None):
        self.store = store
        self.extent = extent or (lambda year: GLOBAL_BBOX)

    def build(self, info: ObjectInfo) -> Outcome:
        key = info.key
        try:
            parsed = layout.parse(key)
        except layout.LayoutError:
            return Outcome(info, "skipped", error="not a key of the Data Lake layout")
        if parsed.family in NOT_INGESTED_FAMILIES:
            return Outcome(info, "skipped", error=f"{parsed.family} objects are not catalogued")
        if parsed.family == "stac-item" and parsed["item_id"] == "collection":
            return Outcome(info, "skipped", error="a collection document of the static catalogue")
        try:
            stac_json = parsed.family == "stac-item"
            item = self._stac_json(key, parsed) if stac_json else self._product(info, parsed)
        except Exception as e:  # noqa: BLE001 - any reader failure: report and skip this object
            msg = f"{type(e).__name__}: {e}".splitlines()[0][:500]
            return Outcome(info, "error", error=msg)
        return Outcome(info, "loaded", item=item)

    # -- families
    def _stac_json(self, key: str, parsed: layout.ParsedKey) -> dict[str, Any]:
        """An item JSON the chain (or harvest) wrote under metadata/stac/: load it as it is."""
        d = json.loads(self.store.read_bytes(key))
        if d.get("type") != "Feature":
            raise IngestError(f"{key} is not a STAC Item")
        cid = parsed["collection"]
        if d.get("collection") != cid or d.get("id") != parsed["item_id"]:
            raise IngestError(
                f"{key}: id/collection {d.get('id')}/{d.get('collection')} do not match its key"
            )
        if cid not in set(COLLECTIONS.values()):
            raise IngestError(f"{key}: unknown collection {cid}")
        pystac.Item.from_dict(d)  # structural check
        return pgstac_item(d)

    def _product(self, info: ObjectInfo, parsed: layout.ParsedKey) -> dict[str, Any]:
        key = info.key
        cid = COLLECTIONS[parsed.family]
        iid = layout.item_id(key)
        start, end = _time_range(parsed.fields, info.mtime)
        suffix = PurePosixPath(key).suffix.lower()
        if suffix in RASTER_SUFFIXES:
            item = self._raster(key, start, end)
        elif suffix == ".nc":
            item = self._file(key, start, end, "application/netcdf", self._netcdf_bbox(key))
        elif suffix == ".json":
            json.loads(self.store.read_bytes(key))  # must parse
            item = self._file(key, start, end, "application/json", None)
        else:
            if info.size == 0:
                raise IngestError(f"{key} is empty")
            item = self._file(key, start, end, "application/octet-stream", None)
        d = item.to_dict(include_self_link=False, transform_hrefs=False)
        # The file is readable: prefer the chain's own item (lineage) when it wrote one into the lake.
        chain = _lake_json(self.store, cid, iid)
        return pgstac_item(chain if chain is not None else d)

    def _common(self) -> dict[str, Any]:
        return {"processor": PROCESSOR, "processor_version": __version__}

    def _raster(self, key: str, start: dt.datetime, end: dt.datetime) -> pystac.Item:
        with self.store.raster_env():
            item = product_items.raster_item(self.store, key, start=start, end=end, **self._common())
        return item

    def _netcdf_bbox(self, key: str) -> tuple[float, float, float, float] | None:
        import netCDF4

        with self.store.reading(key) as path, netCDF4.Dataset(path) as ds:
            names = ("geospatial_lon_min", "geospatial_lat_min", "geospatial_lon_max", "geospatial_lat_max")
            if all(n in ds.ncattrs() for n in names):
                west, south, east, north = (float(ds.getncattr(n)) for n in names)
                return west, south, east, north
        return None

    def _file(
        self,
        key: str,
        start: dt.datetime,
        end: dt.datetime,
        media_type: str,
        bbox: Sequence[float] | None,
    ) -> pystac.Item:
        if bbox is None:
            fields = layout.parse(key).fields
            year = fields.get("year") or fields.get("year2") or fields.get("pastYear")
            bbox = self.extent(int(year) if year else None)
        west, south, east, north = (float(v) for v in bbox)
        geometry = {
            "type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
        }
        return product_items.file_item(
            self.store,
            key,
            geometry=geometry,
            bbox=[west, south, east, north],
            start=start,
            end=end,
            media_type=media_type,
            **self._common(),
        )


# ------------------------------------------------------------------------------------------ the database


class Catalogue:
    """The pgstac side of ingest: one connection, the checkpoint table and the lake's lock, and loads of items
    in transactions with their checkpoint rows (collections, items and extents written by the functions of
    `hrlc.catalog.pgstac`)."""

    def __init__(self, dsn: str):
        import psycopg
        from psycopg_pool import ConnectionPool

        self.dsn = dsn
        # unreachable: one OperationalError at once (a pool would retry for 30 s, logging every attempt)
        psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S, application_name=PROCESSOR).close()
        self._pool = ConnectionPool(
            dsn, min_size=1, max_size=1, open=False, kwargs={"application_name": PROCESSOR}
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            # use_queue: pgstac queues the partition-statistics refresh of each load (a scan of the partition)
            # instead of running it inside every batch; `run_queue` runs it once per scan.
            self.db = pgstac_db(dsn, self._pool, use_queue=True)
            self.conn = self.db.connect()  # autocommit; search_path includes pgstac
            self.conn.execute(f"set application_name to '{PROCESSOR}'")  # pypgstac names it 'pgstac'
            migrations.check(self.conn, COMPONENT, MIGRATIONS)  # SchemaBehind: `hrlc migrate` (no DDL here)
        except BaseException:
            self._pool.close()
            raise
        self._loader: Any = None
        self._collections_ready = False

    def close(self) -> None:
        import atexit

        self.db.disconnect()
        atexit.unregister(self.db.disconnect)  # pypgstac registers one per connection: a watcher reconnects
        self._pool.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def lake_lock(self, store_url: str, timeout_s: float = 120.0) -> Iterator[None]:
        """Hold the lake's advisory lock (one writer of ingest state per lake at a time)."""
        lock_id = 7411_0000_0000 + zlib.crc32(f"hrlc-ingest:{store_url}".encode())
        deadline = time.monotonic() + timeout_s
        while True:
            row = self.conn.execute("SELECT pg_try_advisory_lock(%s::bigint)", [lock_id]).fetchone()
            if row and row[0]:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"another ingest holds the lock of {store_url} for more than {timeout_s} s"
                )
            time.sleep(0.2)
        try:
            yield
        finally:
            self.conn.execute("SELECT pg_advisory_unlock(%s::bigint)", [lock_id])

    def ensure_collections(self) -> None:
        """Create the hrlc collections that are missing (existing ones are left as they are) and the queryables
        with them (in the caller's transaction, if any)."""
        if not self._collections_ready:
            write_collections(self.db, replace=False)
            self._collections_ready = True

    def state(self, store_url: str, prefix: str = "") -> dict[str, str]:
        """key -> ETag of every object of the lake the checkpoint knows (under `prefix`)."""
        rows = self.conn.execute(
            "SELECT key, etag FROM hrlc.ingest_state WHERE store = %s AND key LIKE %s",
            [store_url, _like_prefix(prefix)],
        ).fetchall()
        return {k: e for k, e in rows}

    def commit_batch(self, store_url: str, outcomes: Sequence[Outcome]) -> None:
        """Upsert the batch's items and its checkpoint rows in ONE transaction."""
        from pypgstac.load import Loader, Methods

        # one row per item (a product file and its item JSON in the same batch give the same item)
        items = list({(o.collection, o.item_id): o.item for o in outcomes if o.item is not None}.values())
        rows = [
            (store_url, o.info.key, o.info.etag, o.info.size, o.item_id, o.collection, o.status, o.error)
            for o in outcomes
        ]
        with self.conn.transaction():
            if items:
                self.ensure_collections()
                if self._loader is None:
                    self._loader = Loader(self.db)
                self._loader.load_items(iter(items), insert_mode=Methods.upsert)
            with self.conn.cursor() as cur:
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS ingest_state_in "
                    "(LIKE hrlc.ingest_state INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                )
                with cur.copy(
                    "COPY ingest_state_in (store, key, etag, size, item_id, collection, status, error) "
                    "FROM STDIN"
                ) as copy:
                    for r in rows:
                        copy.write_row(r)
                cur.execute(_UPSERT_STATE)

    def run_queue(self) -> None:
        """Run pgstac's queued maintenance (partition statistics of the loads), outside any transaction."""
        self.conn.execute("CALL run_queued_queries()")

    def update_extents(self, collections: Iterable[str]) -> None:
        """Recompute the spatial/temporal extent of collections from their items (derived data)."""
        update_extents(self.conn, collections)

    def extent(self, year: int | None) -> tuple[float, float, float, float]:
        """The bbox of the catalogued products of a year (else of all products, else the globe)."""
        where = "collection <> 'hrlc-raw' AND collection LIKE 'hrlc-%%'"
        for cond, args in (
            (f"{where} AND content->'properties'->>'hrlc:year' = %s", [str(year)]),
            (where, []),
        ):
            if cond.endswith("%s") and year is None:
                continue
            row = self.conn.execute(
                f"SELECT st_xmin(e), st_ymin(e), st_xmax(e), st_ymax(e) FROM "
                f"(SELECT st_extent(geometry) AS e FROM items WHERE {cond}) s",
                args,
            ).fetchone()
            if row and row[0] is not None:
                return float(row[0]), float(row[1]), float(row[2]), float(row[3])
        return GLOBAL_BBOX


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# --------------------------------------------------------------------------------------------- the loop


@dataclass
class ScanReport:
    """What one scan did."""

    listed: int = 0
    pending: int = 0
    loaded: int = 0
    errors: int = 0
    skipped: int = 0
    error_keys: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "listed": self.listed,
            "pending": self.pending,
            "loaded": self.loaded,
            "errors": self.errors,
            "skipped": self.skipped,
            "error_keys": self.error_keys,
            "seconds": round(self.seconds, 3),
        }


def scan(
    store: Store,
    cat: Catalogue,
    *,
    prefix: str = "",
    batch: int = DEFAULT_BATCH,
    limit: int | None = None,
    on_batch: Callable[[ScanReport], None] | None = None,
) -> ScanReport:
    """One poll: list the lake, ingest every new or changed object in batches (one transaction each)."""
    t0 = time.perf_counter()
    rep = ScanReport()
    with cat.lake_lock(store.url):
        known = cat.state(store.url, prefix)
        objects = list(list_objects(store, prefix))
        rep.listed = len(objects)
        pending = [o for o in objects if known.get(o.key) != o.etag]
        # rasters first: products without a raster footprint (JSON, models) take the extent of the year's
        # catalogued rasters, which are then already loaded
        pending.sort(key=lambda o: (PurePosixPath(o.key).suffix.lower() not in RASTER_SUFFIXES, o.key))
        if limit is not None:
            pending = pending[:limit]
        rep.pending = len(pending)
        builder = ItemBuilder(store, extent=_cached_extent(cat))
        touched: set[str] = set()
        for i in range(0, len(pending), max(1, batch)):
            outcomes = [builder.build(o) for o in pending[i : i + batch]]
            _commit(cat, store.url, outcomes)
            for o in outcomes:
                if o.status == "loaded":
                    rep.loaded += 1
                    touched.add(str(o.collection))
                elif o.status == "error":
                    rep.errors += 1
                    rep.error_keys.append(o.info.key)
                    log.error("ingest: %s: %s", o.info.key, o.error)
                else:
                    rep.skipped += 1
            if on_batch is not None:
                on_batch(rep)
        cat.run_queue()
        if touched:
            cat.update_extents(touched)
    rep.seconds = time.perf_counter() - t0
    return rep


def _commit(cat: Catalogue, store_url: str, outcomes: list[Outcome]) -> None:
    """Commit a batch; if the database refuses it (an item pgstac cannot take), commit object by object so
    only the refused objects are reported (status `error`) and the others still load."""
    import psycopg

    try:
        cat.commit_batch(store_url, outcomes)
        return
    except psycopg.OperationalError:
        raise  # the database is gone: stop, the next run resumes from the checkpoint
    except psycopg.Error as e:
        log.warning("batch refused (%s); loading its objects one by one", str(e).splitlines()[0])
    for n, o in enumerate(outcomes):
        try:
            cat.commit_batch(store_url, [o])
        except psycopg.OperationalError:
            raise
        except psycopg.Error as e:
            outcomes[n] = Outcome(o.info, "error", error=f"refused by pgstac: {str(e).splitlines()[0][:400]}")
            cat.commit_batch(store_url, [outcomes[n]])


def _cached_extent(cat: Catalogue) -> Callable[[int | None], Sequence[float]]:
    cache: dict[int | None, Sequence[float]] = {}

    def extent(year: int | None) -> Sequence[float]:
        if year not in cache:
            cache[year] = cat.extent(year)
        return cache[year]

    return extent


def watch(
    store: Store,
    dsn: str,
    *,
    prefix: str = "",
    interval_s: float = 10.0,
    once: bool = False,
    batch: int = DEFAULT_BATCH,
    max_scans: int | None = None,
    on_scan: Callable[[ScanReport], None] | None = None,
    on_batch: Callable[[ScanReport], None] | None = None,
) -> ScanReport:
    """Poll the lake every `interval_s` seconds and ingest what is new; `once` = one scan and return.

    Returns the report of the last scan. Stops after `max_scans` scans if given (else runs until killed;
    a kill at any point is safe: the next run resumes from the checkpoint). While the database or the lake
    cannot be reached, a watcher that polls (not `once`) closes its connection and tries again with capped,
    jittered back-off, logging one line per outage; the interrupted scan is redone from the checkpoint."""
    if prefix:
        layout.check_key(prefix.rstrip("/"))
    scans = 0
    outage = Outage("catalogue database or lake", log)
    while True:
        try:
            with Catalogue(dsn) as cat:
                outage.recovered()
                while True:
                    rep = scan(store, cat, prefix=prefix, batch=batch, on_batch=on_batch)
                    scans += 1
                    if on_scan is not None:
                        on_scan(rep)
                    if once or (max_scans is not None and scans >= max_scans):
                        return rep
                    time.sleep(interval_s)
        except Exception as e:
            if once or not _is_outage(e):
                raise
            time.sleep(outage.failed(e))


def _is_outage(e: BaseException) -> bool:
    """Whether a polling watcher waits `e` out: the database or the lake (S3) unreachable (the store reports
    an unreachable endpoint as a `StoreError` caused by the connection error)."""
    import psycopg

    kinds: list[type[BaseException]] = [psycopg.OperationalError, ConnectionError]
    try:
        from botocore.exceptions import ConnectionError as S3ConnectionError

        kinds.append(S3ConnectionError)
    except ModuleNotFoundError:
        pass
    cause = e.__cause__ if isinstance(e, StoreError) else e
    return isinstance(cause, tuple(kinds))


def status(dsn: str, store_url: str) -> dict[str, int]:
    """Counts of checkpoint rows by status for a lake."""
    with Catalogue(dsn) as cat:
        rows = cat.conn.execute(
            "SELECT status, count(*) FROM hrlc.ingest_state WHERE store = %s GROUP BY status", [store_url]
        ).fetchall()
    return {s: int(n) for s, n in rows}
