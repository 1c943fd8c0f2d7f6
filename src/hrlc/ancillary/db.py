"""The ancillary metadata in PostgreSQL + PostGIS (schema `ancillary` of the §3.4 database, `HRLC_TRAINING_DSN`).

Three tables (`migrations/0001_create_ancillary.sql`): `datasets` (the registry, upserted from code on every
connection), `uploads` (files put into the shared S3, PutData) and `cache` (layers retrieved and written to
the lake, API Data Access). The schema is created by the versioned migrations of the runner
`hrlc.db.migrations`, applied only on purpose: `hrlc migrate` (and `scripts/services.sh`) or
`hrlc ancillary migrate` (:func:`migrate`). :func:`connect` runs no DDL: the first connection of a process to a
database checks the schema version and refuses one that is behind or missing with one line (`DatabaseError`:
run `hrlc migrate`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from hrlc.ancillary.registry import DATASETS, Dataset
from hrlc.extras import MissingExtra

try:
    import psycopg
    from psycopg.rows import dict_row
    from psycopg.types.json import Jsonb
except ModuleNotFoundError as e:  # a core install: say which extra, not which module
    raise MissingExtra("platform", "the ancillary-data registry", e.name) from e
from hrlc.db import migrations

COMPONENT = "ancillary"
MIGRATIONS = files("hrlc.ancillary") / "migrations"  # NNNN_*.sql, applied by `hrlc migrate`


class DatabaseError(RuntimeError):
    """The ancillary database cannot be reached, its schema is behind, or it refused a request (one line)."""


_checked: set[str] = set()  # the DSNs whose schema this process found current (checked once per process)


def migrate(dsn: str) -> list[str]:
    """Create or update the `ancillary` schema; returns the migrations applied. Only the explicit commands call it
    (`hrlc ancillary migrate`; `hrlc migrate` applies the same migrations)."""
    return migrations.migrate(dsn, COMPONENT, MIGRATIONS)


def check_schema(conn: psycopg.Connection[Any]) -> int:
    """The `ancillary` schema version on `conn`; `DatabaseError` (one line: run `hrlc migrate`) when it is older
    than this hrlc's migrations or missing. Reads only: no DDL, no lock."""
    try:
        return migrations.check(conn, COMPONENT, MIGRATIONS)
    except migrations.SchemaBehind as e:
        raise DatabaseError(str(e)) from None


@contextlib.contextmanager
def connect(dsn: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection (dict rows) to a database whose `ancillary` schema is current (checked on the first connection
    of the process to `dsn`; `DatabaseError` when behind) and whose registry is in sync with the code."""
    try:
        conn = psycopg.connect(dsn, row_factory=dict_row)
    except psycopg.OperationalError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatabaseError(f"cannot reach the ancillary database ({_safe(dsn)}): {first}") from None
    with conn:
        if dsn not in _checked:
            check_schema(conn)  # no DDL: `hrlc migrate` applies the migrations
            _checked.add(dsn)
        sync_registry(conn)
        yield conn


def _safe(dsn: str) -> str:
    """The DSN without its password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "?"
    return f"{info.get('host', '?')}:{info.get('port', 5432)}/{info.get('dbname', '?')}"


def sync_registry(conn: psycopg.Connection[Any], datasets: dict[str, Dataset] | None = None) -> None:
    """Upsert the registry into `ancillary.datasets` (rows whose definition changed are updated)."""
    for ds in (datasets or DATASETS).values():
        d = ds.to_json()
        conn.execute(
            """
            insert into ancillary.datasets as t (name, title, kind, value_type, roles, possible_roles, licence,
                homepage, access, stac_api, stac_collection, stac_asset, s3_href, years, native_resolution_m,
                definition)
            values (%(name)s, %(title)s, %(kind)s, %(values)s, %(roles)s, %(possible_roles)s, %(licence)s,
                %(homepage)s, %(access)s, %(stac_api)s, %(stac_collection)s, %(stac_asset)s, %(s3_href)s,
                %(years)s, %(native_resolution_m)s, %(definition)s)
            on conflict (name) do update set title = excluded.title, kind = excluded.kind,
                value_type = excluded.value_type, roles = excluded.roles,
                possible_roles = excluded.possible_roles, licence = excluded.licence,
                homepage = excluded.homepage, access = excluded.access, stac_api = excluded.stac_api,
                stac_collection = excluded.stac_collection, stac_asset = excluded.stac_asset,
                s3_href = excluded.s3_href, years = excluded.years,
                native_resolution_m = excluded.native_resolution_m, definition = excluded.definition,
                updated = now()
            where t.definition is distinct from excluded.definition
            """,
            {
                **d,
                "roles": list(ds.roles),
                "possible_roles": list(ds.possible_roles),
                "years": list(ds.years),
                "stac_api": ds.stac.api if ds.stac else None,
                "stac_collection": ds.stac.collection if ds.stac else None,
                "stac_asset": ds.stac.asset if ds.stac else None,
                "definition": Jsonb(_json_safe(d)),
            },
        )


def _json_safe(d: Any) -> Any:
    """NaN (nodata of float layers) is not JSON: write it as the string "nan"."""
    if isinstance(d, float) and math.isnan(d):
        return "nan"
    if isinstance(d, dict):
        return {k: _json_safe(v) for k, v in d.items()}
    if isinstance(d, list | tuple):
        return [_json_safe(v) for v in d]
    return d


# ------------------------------------------------------------------------------------------------ uploads


@dataclass(frozen=True)
class UploadRow:
    id: int
    dataset: str
    edition: str
    filename: str
    key: str
    href: str
    sha256: str
    bytes: int
    media_type: str
    crs: str | None
    item: dict[str, Any] | None
    uploaded: str
    superseded: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> UploadRow:
        return cls(
            id=int(row["id"]),
            dataset=row["dataset"],
            edition=row["edition"],
            filename=row["filename"],
            key=row["key"],
            href=row["href"],
            sha256=row["sha256"],
            bytes=int(row["bytes"]),
            media_type=row["media_type"],
            crs=row["crs"],
            item=row["item"],
            uploaded=row["uploaded"].isoformat(),
            superseded=row["superseded"].isoformat() if row["superseded"] else None,
        )


_UPLOAD_COLS = (
    "id, dataset, edition, filename, key, href, sha256, bytes, media_type, crs, item, uploaded, superseded"
)


def upload_by_checksum(conn: psycopg.Connection[Any], dataset: str, sha256: str) -> UploadRow | None:
    row = conn.execute(
        f"select {_UPLOAD_COLS} from ancillary.uploads where dataset = %s and sha256 = %s", (dataset, sha256)
    ).fetchone()
    return UploadRow.of(row) if row else None


def insert_upload(
    conn: psycopg.Connection[Any],
    *,
    dataset: str,
    edition: str,
    filename: str,
    key: str,
    href: str,
    sha256: str,
    size: int,
    media_type: str,
    crs: str | None,
    footprint_wkt: str | None,
    item: dict[str, Any] | None,
    source_url: str | None,
    uploaded_by: str,
    hrlc_version: str,
) -> UploadRow:
    """Record an upload; earlier current uploads of the same file name and edition are superseded, and the
    cached layers of that edition are forgotten (they were made from the old files). One transaction."""
    with conn.transaction():
        conn.execute(
            "update ancillary.uploads set superseded = now() "
            "where dataset = %s and edition = %s and filename = %s and superseded is null",
            (dataset, edition, filename),
        )
        conn.execute("delete from ancillary.cache where dataset = %s and edition = %s", (dataset, edition))
        row = conn.execute(
            f"""
            insert into ancillary.uploads (dataset, edition, filename, key, href, sha256, bytes, media_type, crs,
                footprint, item, source_url, uploaded_by, hrlc_version)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s,
                st_multi(st_geomfromtext(%s, 4326)), %s, %s, %s, %s)
            returning {_UPLOAD_COLS}
            """,
            (
                dataset,
                edition,
                filename,
                key,
                href,
                sha256,
                size,
                media_type,
                crs,
                footprint_wkt,
                Jsonb(item) if item is not None else None,
                source_url,
                uploaded_by,
                hrlc_version,
            ),
        ).fetchone()
    assert row is not None
    return UploadRow.of(row)


def current_uploads(
    conn: psycopg.Connection[Any], dataset: str, edition: str, footprint_wkt: str | None = None
) -> list[UploadRow]:
    """The current (not superseded) uploads of an edition, those intersecting a lon/lat footprint if given,
    oldest first."""
    sql = f"select {_UPLOAD_COLS} from ancillary.uploads where dataset = %s and edition = %s and superseded is null"
    args: list[Any] = [dataset, edition]
    if footprint_wkt is not None:
        sql += " and st_intersects(footprint, st_geomfromtext(%s, 4326))"
        args.append(footprint_wkt)
    return [UploadRow.of(r) for r in conn.execute(sql + " order by id", args).fetchall()]


def uploads(conn: psycopg.Connection[Any], dataset: str | None = None) -> list[UploadRow]:
    sql = f"select {_UPLOAD_COLS} from ancillary.uploads"
    rows = (
        conn.execute(sql + " where dataset = %s order by id", (dataset,))
        if dataset
        else conn.execute(sql + " order by id")
    )
    return [UploadRow.of(r) for r in rows.fetchall()]


# -------------------------------------------------------------------------------------------------- cache


def cached(conn: psycopg.Connection[Any], dataset: str, edition: str, grid: str) -> dict[str, Any] | None:
    return conn.execute(
        "select * from ancillary.cache where dataset = %s and edition = %s and grid = %s",
        (dataset, edition, grid),
    ).fetchone()


def touch(conn: psycopg.Connection[Any], cache_id: int) -> None:
    conn.execute("update ancillary.cache set hits = hits + 1, last_used = now() where id = %s", (cache_id,))


def record_cache(conn: psycopg.Connection[Any], **row: Any) -> None:
    """Insert or replace the cache entry of (dataset, edition, grid)."""
    conn.execute(
        """
        insert into ancillary.cache (dataset, edition, grid, key, href, crs, resolution, width, height, footprint,
            access, source, source_ids, sha256, bytes)
        values (%(dataset)s, %(edition)s, %(grid)s, %(key)s, %(href)s, %(crs)s, %(resolution)s, %(width)s,
            %(height)s, st_geomfromtext(%(footprint_wkt)s, 4326), %(access)s, %(source)s, %(source_ids)s,
            %(sha256)s, %(bytes)s)
        on conflict (dataset, edition, grid) do update set key = excluded.key, href = excluded.href,
            crs = excluded.crs, resolution = excluded.resolution, width = excluded.width,
            height = excluded.height, footprint = excluded.footprint, access = excluded.access,
            source = excluded.source, source_ids = excluded.source_ids, sha256 = excluded.sha256,
            bytes = excluded.bytes, created = now(), last_used = now(), hits = 0
        """,
        row,
    )


def cache_entries(conn: psycopg.Connection[Any], dataset: str | None = None) -> list[dict[str, Any]]:
    sql = (
        "select dataset, edition, grid, key, href, crs, resolution, width, height, access, source, source_ids, "
        "sha256, bytes, created, last_used, hits from ancillary.cache"
    )
    if dataset:
        return conn.execute(sql + " where dataset = %s order by id", (dataset,)).fetchall()
    return conn.execute(sql + " order by id").fetchall()
