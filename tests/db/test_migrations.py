"""Versioned SQL migrations on a real PostgreSQL: applied once, in order, atomically; edits refused."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from hrlc.db.migrations import MigrationError, current_version, migrate


@pytest.fixture
def dsn(empty_db: str) -> str:
    return empty_db


def tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select table_name from information_schema.tables where table_schema = 'demo'")
        return {r[0] for r in rows.fetchall()}


def test_applies_pending_migrations_once_in_order(dsn: str, tmp_path: Path) -> None:
    (tmp_path / "0001_create.sql").write_text("create schema demo; create table demo.a (x int primary key);")
    (tmp_path / "0002_more.sql").write_text("create table demo.b (y int references demo.a (x));")
    assert current_version(dsn, "demo") == 0
    assert migrate(dsn, "demo", tmp_path) == ["0001_create.sql", "0002_more.sql"]
    assert migrate(dsn, "demo", tmp_path) == []
    assert tables(dsn) == {"a", "b"} and current_version(dsn, "demo") == 2


def test_a_failing_migration_leaves_nothing_and_says_which(dsn: str, tmp_path: Path) -> None:
    (tmp_path / "0001_create.sql").write_text("create schema demo; create table demo.a (x int);")
    (tmp_path / "0002_bad.sql").write_text(
        "create table demo.c (z int); create table demo.nope (q no_such_type);"
    )
    with pytest.raises(MigrationError, match="0002_bad.sql failed"):
        migrate(dsn, "demo", tmp_path)
    assert tables(dsn) == {"a"} and current_version(dsn, "demo") == 1  # 0001 kept, 0002 rolled back whole


def test_changed_or_badly_named_migrations_are_refused(dsn: str, tmp_path: Path) -> None:
    (tmp_path / "0001_create.sql").write_text("create schema demo;")
    migrate(dsn, "demo", tmp_path)
    (tmp_path / "0001_create.sql").write_text("create schema demo; create table demo.a (x int);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(dsn, "demo", tmp_path)
    (tmp_path / "0001_create.sql").write_text("create schema demo;")
    (tmp_path / "2_Bad Name.sql").write_text("")
    with pytest.raises(MigrationError, match="NNNN_lower_case"):
        migrate(dsn, "demo", tmp_path)
