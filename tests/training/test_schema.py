"""The training schema made by the versioned migrations: the spec's tables, the reference to PostGIS's
spatial_ref_sys, spatial and attribute indexes, the seeded providers and legend; migrating again is a no-op."""

from __future__ import annotations

from hrlc import legend
from hrlc.db.migrations import current_version
from hrlc.training import db

from .conftest import query


def test_tables_indexes_and_seeds(training_dsn: str) -> None:
    assert db.migrate(training_dsn) == []  # applied once, by the fixture
    assert current_version(training_dsn, "training") == 3  # 0001 schema, 0002 providers, 0003 retire
    tables = {
        r[0]
        for r in query(
            training_dsn, "select table_name from information_schema.tables where table_schema = 'training'"
        )
    }
    assert {"provider", "trainingprovider", "trainingmetadata", "trainingset"} <= tables  # spec §3.4.2.2
    assert {
        "label_mapping",
        "hrlc_class",
        "import_run",
        "import_outcome",
        "import_status",
        "dataset",
    } <= tables
    refs = query(
        training_dsn,
        "select conrelid::regclass::text, confrelid::regclass::text from pg_constraint "
        "where contype = 'f' and connamespace = 'training'::regnamespace",
    )
    assert ("training.trainingmetadata", "spatial_ref_sys") in refs
    assert ("training.trainingset", "training.trainingmetadata") in refs
    indexes = {
        r[0]: r[1]
        for r in query(
            training_dsn, "select indexname, indexdef from pg_indexes where schemaname = 'training'"
        )
    }
    assert "USING gist (geom_4326)" in indexes["trainingset_geom_4326_idx"]
    assert "USING gist (extent)" in indexes["trainingmetadata_extent_idx"]
    assert "(class_code)" in indexes["trainingset_class_idx"]
    assert "WHERE (superseded_at IS NULL)" in indexes["trainingmetadata_current_key"]
    codes = [r[0] for r in query(training_dsn, "select code from training.hrlc_class order by code")]
    assert tuple(codes) == legend.CODES
    seeded = {r[0] for r in query(training_dsn, "select code from training.provider")}
    assert {"Polimi", "UniPV", "UniTN"} <= seeded
