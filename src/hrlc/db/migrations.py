"""Versioned SQL migrations: plain `NNNN_name.sql` files of a component, applied in order, once.

A component (e.g. `training`, `ancillary`) keeps its migrations as package data in a folder of SQL files
named `0001_create_tables.sql`, `0002_...`. `migrate(dsn, component, folder)` applies the ones not yet
recorded in `public.hrlc_migrations`, each in its own transaction together with its record, under a
per-component advisory lock (two processes migrating at once wait for each other). A recorded migration
whose file has changed since is an error: migrations are append-only.

Schemas change once, on purpose: `hrlc migrate` applies every component's migrations; long-running processes
(API, workers, status consumer, ingest watcher) only `check` that their component is current at start and
refuse with `SchemaBehind` (one line: run `hrlc migrate`) otherwise. No process runs DDL as it starts, so a
starting worker takes no lock another transaction could be waiting behind.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import psycopg

_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql\Z")

LEDGER = """
create table if not exists public.hrlc_migrations (
    component text not null,
    version integer not null,
    name text not null,
    checksum text not null,
    applied timestamptz not null default now(),
    primary key (component, version)
)
"""


class MigrationError(RuntimeError):
    """A migration that cannot be applied, or a recorded one whose file changed."""


class SchemaBehind(MigrationError):
    """A database whose schema of a component is older than the code (or missing): run `hrlc migrate`."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(folder: Traversable | Path) -> list[Migration]:
    """The migrations of a folder, by version; file names must be `NNNN_lower_case.sql`, versions unique."""
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        m = _NAME.match(entry.name)
        if not m:
            raise MigrationError(f"migration file {entry.name!r} is not named NNNN_lower_case.sql")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations with version {version}: {found[version].name}, {entry.name}"
            )
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def migrate(dsn: str, component: str, folder: Traversable | Path) -> list[str]:
    """Apply the component's pending migrations; returns the names applied (empty when up to date)."""
    migrations = load(folder)
    applied: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(hashtext(%s))", (f"hrlc_migrations:{component}",))
        try:
            conn.execute(LEDGER)
            done = {
                int(v): str(c)
                for v, c in conn.execute(
                    "select version, checksum from public.hrlc_migrations where component = %s", (component,)
                ).fetchall()
            }
            for mig in migrations:
                if mig.version in done:
                    if done[mig.version] != mig.checksum:
                        raise MigrationError(
                            f"{component} migration {mig.name} changed after it was applied; "
                            "add a new migration instead"
                        )
                    continue
                try:
                    with conn.transaction():
                        conn.execute(mig.sql.encode())
                        conn.execute(
                            "insert into public.hrlc_migrations (component, version, name, checksum) "
                            "values (%s, %s, %s, %s)",
                            (component, mig.version, mig.name, mig.checksum),
                        )
                except psycopg.Error as e:
                    raise MigrationError(f"{component} migration {mig.name} failed: {e}".strip()) from None
                applied.append(mig.name)
        finally:
            conn.execute("select pg_advisory_unlock(hashtext(%s))", (f"hrlc_migrations:{component}",))
    return applied


def current_version(dsn: str, component: str) -> int:
    """The highest applied migration version of a component (0: none)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("select to_regclass('public.hrlc_migrations')").fetchone()
        if not exists or exists[0] is None:
            return 0
        row = conn.execute(
            "select coalesce(max(version), 0) from public.hrlc_migrations where component = %s", (component,)
        ).fetchone()
        return int(row[0]) if row else 0


def latest(folder: Traversable | Path) -> int:
    """The highest migration version of a folder."""
    found = load(folder)
    return found[-1].version if found else 0


def check(conn: psycopg.Connection[Any], component: str, folder: Traversable | Path) -> int:
    """The component's schema version on `conn`; `SchemaBehind` when it is older than the code's migrations.
    Reads only (no DDL, no lock)."""
    want = latest(folder)
    row = conn.execute("select to_regclass('public.hrlc_migrations') is not null").fetchone()
    have = 0
    if row and list(row.values() if isinstance(row, dict) else row)[0]:
        got = conn.execute(
            "select coalesce(max(version), 0) from public.hrlc_migrations where component = %s", (component,)
        ).fetchone()
        have = int(list(got.values() if isinstance(got, dict) else got)[0]) if got else 0
    if have < want:
        where = conn.info.dbname
        raise SchemaBehind(
            f"the {component} schema of database {where!r} is at version {have}, this hrlc needs {want}: "
            "run `hrlc migrate`"
        )
    return have
