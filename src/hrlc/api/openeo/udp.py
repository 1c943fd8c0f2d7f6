"""User-defined processes (`/process_graphs`), stored per user in PostgreSQL (`hrlc_api.process_graphs`).

One row per (user, process id) with the process as JSON. The schema and table are created on first use.
The database is the catalogue's (`HRLC_CATALOG`), next to pgstac, in a schema of its own.
"""

from __future__ import annotations

import threading
from typing import Any

_DDL = """
CREATE SCHEMA IF NOT EXISTS hrlc_api;
CREATE TABLE IF NOT EXISTS hrlc_api.process_graphs (
    user_id text NOT NULL,
    id text NOT NULL,
    process jsonb NOT NULL,
    updated timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id)
);
"""


class ProcessGraphStore:
    """CRUD of user-defined processes (each call its own short connection)."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self._ready = False
        self._lock = threading.Lock()

    def _conn(self) -> Any:
        import psycopg
        from psycopg.rows import tuple_row

        conn = psycopg.connect(self.dsn, autocommit=True, row_factory=tuple_row)
        with self._lock:
            if not self._ready:
                conn.execute("SELECT pg_advisory_lock(7312001)")
                try:
                    conn.execute(_DDL)
                finally:
                    conn.execute("SELECT pg_advisory_unlock(7312001)")
                self._ready = True
        return conn

    def list(self, user: str) -> list[dict[str, Any]]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT process FROM hrlc_api.process_graphs WHERE user_id = %s ORDER BY id", [user]
            ).fetchall()
        return [r[0] for r in rows]

    def get(self, user: str, pid: str) -> dict[str, Any] | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT process FROM hrlc_api.process_graphs WHERE user_id = %s AND id = %s", [user, pid]
            ).fetchone()
        return row[0] if row else None

    def put(self, user: str, pid: str, process: dict[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        with self._conn() as conn:
            conn.execute(
                "INSERT INTO hrlc_api.process_graphs (user_id, id, process) VALUES (%s, %s, %s) "
                "ON CONFLICT (user_id, id) DO UPDATE SET process = excluded.process, updated = now()",
                [user, pid, Jsonb(process)],
            )

    def delete(self, user: str, pid: str) -> bool:
        with self._conn() as conn:
            cur = conn.execute(
                "DELETE FROM hrlc_api.process_graphs WHERE user_id = %s AND id = %s", [user, pid]
            )
            return bool(cur.rowcount)
