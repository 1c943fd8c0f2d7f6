"""Issue 11: the `training` schema changes once, on purpose (`hrlc migrate`, `hrlc training migrate`). An import,
the providers, the status, a retirement and the classification's sample selection only check its version: a
database whose schema is missing or behind is refused with one line naming `hrlc migrate`, and nothing is created
in it."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import geopandas as gpd
import psycopg
import pytest
import shapely
from typer.testing import CliRunner

from cli_errors import one_line_error
from dbstate import tables
from hrlc.cli import app
from hrlc.db import migrations
from hrlc.training import db
from hrlc.training.importer import import_training
from hrlc.training.query import TrainingQuery
from hrlc.training.samples import TrainingDataError
from hrlc.training.select import TrainingDb, select_samples

from .conftest import write_set

runner = CliRunner()
SET = "koper_static_MIG_2019_photo-interpreted_UniTN"


def has_schema(dsn: str, name: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select to_regnamespace(%s) is not null", (name,)).fetchone()
    return bool(row and row[0])


def a_set(root: Path) -> Path:
    """One training set of two points in HRLC codes from the seeded provider UniTN; returns the source folder."""
    gdf = gpd.GeoDataFrame(
        {"class_code": [30, 80]}, geometry=shapely.points([13.70, 13.71], [45.50, 45.51]), crs="EPSG:4326"
    )
    write_set(root, SET, gdf)
    return root


def test_every_use_of_a_database_without_the_schema_refuses_in_one_line_and_creates_nothing(
    empty_db: str, tmp_path: Path
) -> None:
    source = a_set(tmp_path / "in")
    for use in (
        lambda: import_training(source, dsn=empty_db),
        lambda: db.add_provider("Lab", dsn=empty_db),
        lambda: db.retire(SET, "a test", dsn=empty_db),
        lambda: db.providers(empty_db),
        lambda: db.import_status(empty_db),
        lambda: db.import_runs(empty_db),
        lambda: select_samples(empty_db, area="koper"),
        lambda: TrainingDb(empty_db).select(TrainingQuery(area="koper")),  # the classification's port
    ):
        with pytest.raises((db.TrainingDbError, TrainingDataError)) as info:
            use()
        message = str(info.value)
        assert "\n" not in message and message.endswith("run `hrlc migrate`"), message
        assert "the training schema of database" in message, message
        assert "is at version 0, this hrlc needs 3" in message, message
    assert not has_schema(empty_db, "training")
    assert tables(empty_db) == set()  # not even the migration ledger


def test_the_cli_exits_2_with_one_line_naming_hrlc_migrate(empty_db: str, tmp_path: Path) -> None:
    source = a_set(tmp_path / "in")
    for args in (
        ["import", source],
        ["import", source, "--json"],
        ["status"],
        ["status", "--runs"],
        ["provider", "list"],
        ["provider", "add", "Lab"],
        ["retire", SET, "--reason", "a test"],
    ):
        result = runner.invoke(app, ["training", *(str(a) for a in args), "--dsn", empty_db])
        one_line_error(result, "is at version 0, this hrlc needs 3: run `hrlc migrate`")
    assert tables(empty_db) == set()

    # the explicit command applies the migrations; then the import works
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("create extension postgis")  # what scripts/services.sh creates
    result = runner.invoke(
        app, ["migrate", "--only", "training", "--only", "ancillary", "--training-dsn", empty_db]
    )
    assert result.exit_code == 0, result.output
    assert migrations.current_version(empty_db, "training") == 3
    result = runner.invoke(app, ["training", "import", str(source), "--dsn", empty_db, "--json"])
    assert result.exit_code == 0 and '"outcome": "imported"' in result.stdout, result.output


def test_a_schema_behind_the_code_is_refused_and_left_as_it_is(empty_db: str, tmp_path: Path) -> None:
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("create extension postgis")
    first = tmp_path / "first"  # the database of a release that had only the first migration
    first.mkdir()
    shipped = resources.files("hrlc.training") / "migrations"
    with resources.as_file(shipped / "0001_training_schema.sql") as path:
        shutil.copy(path, first / path.name)
    assert migrations.migrate(empty_db, "training", first) == ["0001_training_schema.sql"]
    before = tables(empty_db)
    source = a_set(tmp_path / "in")

    with pytest.raises(db.TrainingDbError, match=r"is at version 1, this hrlc needs 3: run `hrlc migrate`\Z"):
        import_training(source, dsn=empty_db)
    one_line_error(
        runner.invoke(app, ["training", "import", str(source), "--dsn", empty_db]),
        "is at version 1, this hrlc needs 3: run `hrlc migrate`",
    )
    assert tables(empty_db) == before and migrations.current_version(empty_db, "training") == 1
    with psycopg.connect(empty_db) as conn:  # no run recorded, no provider seeded (0002)
        assert conn.execute("select count(*) from training.import_run").fetchone() == (0,)
        assert conn.execute("select count(*) from training.provider").fetchone() == (0,)

    result = runner.invoke(app, ["training", "migrate", "--dsn", empty_db])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == '{"applied": ["0002_seed_providers.sql", "0003_retire.sql"]}'
    [outcome] = import_training(source, dsn=empty_db).outcomes
    assert outcome.outcome == "imported" and outcome.n_features == 2
