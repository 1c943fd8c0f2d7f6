"""What a database holds, for tests that assert a command created nothing (imported as `dbstate`)."""

from __future__ import annotations

import psycopg


def tables(dsn: str) -> set[str]:
    """Every table and view of the database outside PostgreSQL's and PostGIS's own, as schema.name."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema not in ('pg_catalog', 'information_schema') and table_name <> 'spatial_ref_sys' "
            "and table_name not in ('geometry_columns', 'geography_columns')"
        ).fetchall()
    return {r[0] for r in rows}


def has_schema(dsn: str, name: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select to_regnamespace(%s) is not null", (name,)).fetchone()
    return bool(row and row[0])
