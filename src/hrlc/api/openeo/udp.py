"""User-defined processes (`/process_graphs`), stored per user in PostgreSQL (`hrlc_api.process_graphs`).

One row per (user, process id) with the process as JSON. The table comes from the versioned migrations of
component `api` (`migrations/`, applied by `hrlc migrate`; the API checks the version as it starts). The
database is the catalogue's (`HRLC_CATALOG`), next to pgstac, in a schema of its own.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Protocol

COMPONENT = "api"
MIGRATIONS = resources.files("hrlc.api.openeo") / "migrations"


class ProcessGraphs(Protocol):
    """User-defined processes of each user, by id (the route tests' fake: `tests/api/fakes.py`)."""

    def list(self, user: str) -> list[dict[str, Any]]: ...
    def get(self, user: str, pid: str) -> dict[str, Any] | None: ...
    def put(self, user: str, pid: str, process: dict[str, Any]) -> None: ...
    def delete(self, user: str, pid: str) -> bool: ...


class ProcessGraphStore:
    """CRUD of user-defined processes in PostgreSQL (each call its own short connection)."""

    def __init__(self, dsn: str):
        self.dsn = dsn

    def _conn(self) -> Any:
        import psycopg
        from psycopg.rows import tuple_row

        return psycopg.connect(self.dsn, autocommit=True, row_factory=tuple_row, connect_timeout=10)

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
