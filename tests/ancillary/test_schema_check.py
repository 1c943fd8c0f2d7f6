"""Issue 11: the `ancillary` schema changes once, on purpose (`hrlc migrate`, `hrlc ancillary migrate`). Using the
database (a command, the features processor in a worker) only checks its version, on the first connection of the
process: a database whose schema is missing is refused with one line naming `hrlc migrate`, and nothing is
created in it."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

import dbstate
from cli_errors import one_line_error
from hrlc.ancillary import AncillaryError, db
from hrlc.cli import app
from hrlc.db import migrations
from hrlc.settings import Settings

from .conftest import AOI, service

runner = CliRunner()
AOI_ARG = ",".join(str(v) for v in AOI)


@pytest.fixture
def empty_env(empty_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """HRLC_TRAINING_DSN is an empty database (no schema), the lake a local folder, the catalogue static; this
    process has checked no database yet."""
    for k, v in {
        "HRLC_STORE": str(tmp_path / "lake"),
        "HRLC_CATALOG": "static",
        "HRLC_TRAINING_DSN": empty_db,
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(db, "_checked", set())
    return empty_db


def tables(dsn: str) -> set[str]:
    """The database's tables, and `ancillary` when that schema exists (even empty)."""
    return dbstate.tables(dsn) | ({"ancillary"} if dbstate.has_schema(dsn, "ancillary") else set())


def test_using_a_database_without_the_schema_refuses_in_one_line_and_creates_nothing(
    empty_env: str, tmp_path: Path
) -> None:
    want = "the ancillary schema of database"
    with pytest.raises(db.DatabaseError) as info, db.connect(empty_env):
        pass
    message = str(info.value)
    assert "\n" not in message and want in message, message
    assert message.endswith("is at version 0, this hrlc needs 1: run `hrlc migrate`"), message
    # what the features processor calls in a worker (a ProcessorError "ancillary DEM: ..." there)
    with pytest.raises(AncillaryError, match=r"needs 1: run `hrlc migrate`\Z"):
        service(Settings()).get("copernicus-dem", aoi=AOI, resolution=30)
    assert empty_env not in db._checked
    assert tables(empty_env) == set()  # no schema, not even the migration ledger
    assert not any((tmp_path / "lake").rglob("*"))  # the lake its caller opened stays empty


def test_the_cli_exits_2_with_one_line_then_works_after_hrlc_migrate(empty_env: str) -> None:
    for args in (["list"], ["list", "--json"], ["get", "copernicus-dem", "--aoi", AOI_ARG]):
        one_line_error(
            runner.invoke(app, ["ancillary", *args]), "is at version 0, this hrlc needs 1: run `hrlc migrate`"
        )
    assert tables(empty_env) == set()

    with psycopg.connect(empty_env, autocommit=True) as conn:
        conn.execute("create extension postgis")  # what scripts/services.sh creates
    result = runner.invoke(app, ["migrate", "--only", "ancillary", "--training-dsn", empty_env])
    assert result.exit_code == 0, result.output
    assert migrations.current_version(empty_env, "ancillary") == 1
    result = runner.invoke(app, ["ancillary", "list", "--json"])
    assert result.exit_code == 0 and '"copernicus-dem"' in result.stdout, result.output
    assert empty_env in db._checked  # checked once for this process: later connections do not ask again
