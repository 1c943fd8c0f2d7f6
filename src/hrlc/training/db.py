"""The training-set database (spec §3.4.2.2): its migrations, its providers and label mappings, its import log.

Schema `training` in a PostgreSQL + PostGIS database (`HRLC_TRAINING_DSN`; every function here takes its DSN as
an argument, the entry points read the setting), created by the plain-SQL
migrations of `hrlc/training/migrations/`, applied only on purpose: `hrlc migrate` (and `scripts/services.sh`),
`hrlc training migrate`, :func:`migrate`. Every other use (import, providers, status, retirement, the
classification's sample selection) connects through :func:`connect`, which checks the schema version and refuses
a database whose schema is behind or missing with one line (`TrainingDbError`: run `hrlc migrate`); no DDL runs
on use. The model is documented in `docs/training-db.md`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from hrlc import __version__, legend
from hrlc.db import migrations
from hrlc.extras import MissingExtra

try:
    import psycopg
except ModuleNotFoundError as e:  # a core install: say which extra, not which module
    raise MissingExtra("platform", "the training-set database", e.name) from e

# What writes import runs (imports and retirements), recorded with each run.
IMPORTER_VERSION = f"hrlc {__version__} training-importer 1"

__all__ = [
    "COMPONENT",
    "TrainingDbError",
    "add_provider",
    "check_schema",
    "connect",
    "import_outcomes",
    "import_runs",
    "import_status",
    "label_key",
    "migrate",
    "providers",
    "read_mapping_csv",
]

COMPONENT = "training"
MIGRATIONS = resources.files("hrlc.training") / "migrations"  # NNNN_*.sql, applied by `hrlc migrate`


class TrainingDbError(RuntimeError):
    """The training database is unreachable or refuses a request (one line)."""


def connect(dsn: str, *, check: bool = True, **kwargs: Any) -> psycopg.Connection[Any]:
    """A connection to the training database whose `training` schema is current (`check`, the default: see
    :func:`check_schema`). `TrainingDbError` (one line) when the server is unreachable or the schema behind."""
    try:
        conn = psycopg.connect(dsn, connect_timeout=10, **kwargs)
    except psycopg.OperationalError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TrainingDbError(f"cannot connect to the training database: {first}") from None
    if check:
        try:
            check_schema(conn)
            if not conn.autocommit:
                conn.rollback()  # end the check's read: the caller starts its own transaction
        except BaseException:
            conn.close()
            raise
    return conn


def check_schema(conn: psycopg.Connection[Any]) -> int:
    """The `training` schema version on `conn`; `TrainingDbError` (one line: run `hrlc migrate`) when it is older
    than this hrlc's migrations or missing. Reads only: no DDL, no lock."""
    try:
        return migrations.check(conn, COMPONENT, MIGRATIONS)
    except migrations.SchemaBehind as e:
        raise TrainingDbError(str(e)) from None


def migrate(dsn: str) -> list[str]:
    """Create or update the `training` schema; returns the migrations applied (empty when up to date). Only the
    explicit commands call it (`hrlc training migrate`; `hrlc migrate` applies the same migrations)."""
    connect(dsn, check=False).close()  # one clear line when the server is unreachable
    try:
        return migrations.migrate(dsn, COMPONENT, MIGRATIONS)
    except migrations.MigrationError as e:
        raise TrainingDbError(str(e)) from None


def label_key(value: Any) -> str:
    """A label as the mapping table keys it: integral numbers without decimals (``3.0`` -> ``"3"``), text
    stripped."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def add_provider(
    code: str,
    name: str | None = None,
    *,
    dsn: str,
    url: str | None = None,
    class_column: str | None = None,
    description: str | None = None,
    mapping: Mapping[Any, int | None] | None = None,
) -> int:
    """Register a provider (or update it when its code exists); returns its id.

    `mapping`: the provider's labels -> HRLC class codes (None = "not a class": those features are skipped).
    Given, it replaces the provider's whole mapping; a provider without one delivers HRLC codes.
    `TrainingDbError` when the schema is behind (run `hrlc migrate`).
    """
    if mapping is not None:
        bad = {k: v for k, v in mapping.items() if v is not None and int(v) not in legend.CODES}
        if bad:
            raise TrainingDbError(f"mapping of provider {code} targets codes outside the HRLC legend: {bad}")
    with connect(dsn) as conn, conn.transaction():
        try:
            row = conn.execute(
                """
                insert into training.provider (code, name, url, class_column, description)
                values (%(code)s, %(name)s, %(url)s, %(class_column)s, %(description)s)
                on conflict (lower(code)) do update set
                    name = coalesce(%(name_given)s, training.provider.name),
                    url = coalesce(excluded.url, training.provider.url),
                    class_column = coalesce(excluded.class_column, training.provider.class_column),
                    description = coalesce(excluded.description, training.provider.description)
                returning provider_id
                """,
                {
                    "code": code,
                    "name": name or code,
                    "name_given": name,
                    "url": url,
                    "class_column": class_column,
                    "description": description,
                },
            ).fetchone()
        except psycopg.errors.CheckViolation:
            raise TrainingDbError(
                f"provider code {code!r} is not letters, digits and '-' (it is part of file names)"
            ) from None
        assert row is not None
        provider_id = int(row[0])
        if mapping is not None:
            conn.execute("delete from training.label_mapping where provider_id = %s", (provider_id,))
            with conn.cursor().copy(
                "copy training.label_mapping (provider_id, label, class_code) from stdin"
            ) as cp:
                for label, code_ in mapping.items():
                    cp.write_row((provider_id, label_key(label), None if code_ is None else int(code_)))
    return provider_id


def read_mapping_csv(path: Path | str) -> dict[str, int | None]:
    """A label mapping from a CSV with columns `label,class_code` (empty class_code = not a class)."""
    text = Path(path).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or not {"label", "class_code"} <= set(rows[0]):
        raise TrainingDbError(f"mapping file {path} needs a header with columns label,class_code")
    out: dict[str, int | None] = {}
    for i, r in enumerate(rows, start=2):
        value = (r["class_code"] or "").strip()
        try:
            out[label_key(r["label"])] = int(value) if value else None
        except ValueError:
            raise TrainingDbError(f"{path}:{i}: class_code {value!r} is not an integer") from None
    return out


def _frame(dsn: str, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    with connect(dsn) as conn:
        cur = conn.execute(sql, params or {})
        columns = [d.name for d in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def providers(dsn: str) -> pd.DataFrame:
    """The providers, with the number of labels of their mapping and of their current training sets."""
    return _frame(
        dsn,
        """
        select p.code, p.name, p.class_column,
               (select count(*) from training.label_mapping l where l.provider_id = p.provider_id) as labels,
               (select count(*) from training.dataset d where d.provider = p.code) as datasets
        from training.provider p order by lower(p.code)
        """,
    )


def import_status(dsn: str) -> pd.DataFrame:
    """The last outcome of every folder ever imported (view `training.import_status`), by dataset name."""
    return _frame(dsn, "select * from training.import_status order by dataset_name")


def import_runs(dsn: str, limit: int = 20) -> pd.DataFrame:
    """The last import runs with their counts of outcomes, newest first."""
    return _frame(
        dsn,
        """
        select r.import_run_id, r.source, r.started_at, r.finished_at, r.importer_version,
               count(o.*) filter (where o.outcome = 'imported') as imported,
               count(o.*) filter (where o.outcome = 'replaced') as replaced,
               count(o.*) filter (where o.outcome = 'unchanged') as unchanged,
               count(o.*) filter (where o.outcome = 'rejected') as rejected
        from training.import_run r left join training.import_outcome o using (import_run_id)
        group by r.import_run_id order by r.import_run_id desc limit %(limit)s
        """,
        {"limit": limit},
    )


def import_outcomes(run_id: int, dsn: str) -> pd.DataFrame:
    """What one import run did with each folder it found."""
    return _frame(
        dsn,
        """
        select dataset_name, outcome, reason, version, n_features, location, notes, seconds
        from training.import_outcome where import_run_id = %(run)s order by import_outcome_id
        """,
        {"run": run_id},
    )


def retire(dataset_name: str, reason: str, dsn: str) -> int:
    """Retire the current version of a training set: superseded without a successor (rows kept, no longer
    selected), recorded in the import log as `retired` with `reason`. Returns the version retired."""
    with connect(dsn) as conn, conn.transaction():
        row = conn.execute(
            "select trainingmetadata_id, version, location, n_features, checksum from training.trainingmetadata "
            "where dataset_name = %s and superseded_at is null for update",
            (dataset_name,),
        ).fetchone()
        if row is None:
            raise TrainingDbError(f"no current training set named {dataset_name!r}")
        mid, version, location, n_features, checksum = row
        conn.execute(
            "update training.trainingmetadata set superseded_at = now() where trainingmetadata_id = %s",
            (mid,),
        )
        run = conn.execute(
            "insert into training.import_run (source, importer_version, finished_at) "
            "values (%s, %s, now()) returning import_run_id",
            (f"retire {dataset_name}", IMPORTER_VERSION),  # the same provenance as an import
        ).fetchone()
        assert run is not None
        conn.execute(
            "insert into training.import_outcome (import_run_id, dataset_name, location, outcome, reason, "
            "trainingmetadata_id, version, n_features, checksum) "
            "values (%s, %s, %s, 'retired', %s, %s, %s, %s, %s)",
            (run[0], dataset_name, location, reason, mid, version, n_features, checksum),
        )
    return int(version)
