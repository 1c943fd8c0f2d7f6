"""The job store: jobs, their tasks, logs, and the processor/worker registry in PostgreSQL (schema `hrlc_jobs`).

Plain SQL over psycopg 3. The schema is created and upgraded by versioned migrations (`migrations/`, `hrlc
migrate`); processes only `check_schema` as they start.
Task rows are keyed by (job_id, id), `id` being the DAG task id; `depends_on` holds the DAG edges.
States: jobs created -> queued -> running -> finished | error | canceled; tasks created -> queued -> running
-> finished | error | canceled. A terminal task state is never overwritten by a later status message, which
makes the status consumer idempotent under duplicates and redeliveries.
Runs: `jobs.run` counts the starts of a job (0 = never started); `start_job` increments it and gives the new
task rows the same `run`, which travels in task and status messages (message version 2), so statuses and dead
letters of an older run of the job are recognised and ignored, and a worker of an older run stops.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from hrlc.db import migrations
from hrlc.settings import DEFAULT_JOBS_DSN

SCHEMA = "hrlc_jobs"
LIVE_WORKER_S = 60  # a worker whose heartbeat is older than this is not live

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

COMPONENT = "jobs"
MIGRATIONS = resources.files("hrlc.jobs") / "migrations"  # NNNN_*.sql, applied by `hrlc migrate`


def connect(
    dsn: str | None = None, *, autocommit: bool = False, application_name: str = "hrlc"
) -> psycopg.Connection[dict[str, Any]]:
    """A connection to the job store `dsn` (`HRLC_JOBS_DSN`, given by the process; default the local PostgreSQL
    as postgres); `application_name` names the process in `pg_stat_activity`."""
    return psycopg.connect(
        dsn or DEFAULT_JOBS_DSN,
        row_factory=dict_row,
        autocommit=autocommit,
        connect_timeout=10,
        application_name=application_name,
    )


def migrate(dsn: str) -> list[str]:
    """Apply the job store's pending migrations (`hrlc migrate`); returns their names."""
    return migrations.migrate(dsn, COMPONENT, MIGRATIONS)


def check_schema(conn: psycopg.Connection[Any]) -> int:
    """The job store's schema version; `SchemaBehind` when older than the code (run `hrlc migrate`). Reads only:
    a process starting takes no lock a job transaction could wait behind."""
    return migrations.check(conn, COMPONENT, MIGRATIONS)


def add_log(
    conn: psycopg.Connection[Any], job_id: str, level: str, message: str, task_id: str | None = None
) -> None:
    conn.execute(
        f"insert into {SCHEMA}.logs (job_id, task_id, level, message) values (%s, %s, %s, %s)",
        (job_id, task_id, level, message),
    )


# ---------------------------------------------------------------------------------------------- registry


def register_processor(
    conn: psycopg.Connection[Any], name: str, version: str, entry_point: str, image: str | None = None
) -> None:
    with conn.transaction():
        conn.execute(
            f"insert into {SCHEMA}.processors (name, version, entry_point, image) values (%s, %s, %s, %s) "
            "on conflict (name, version) do update set entry_point = excluded.entry_point, "
            "image = excluded.image, updated = now()",
            (name, version, entry_point, image),
        )


def heartbeat(
    conn: psycopg.Connection[Any],
    worker_id: str,
    processor: str,
    version: str,
    *,
    host: str,
    pid: int,
    capacity: int = 1,
) -> None:
    with conn.transaction():
        conn.execute(
            f"insert into {SCHEMA}.workers (id, processor, processor_version, host, pid, capacity) "
            "values (%s, %s, %s, %s, %s, %s) on conflict (id) do update set heartbeat = now(), "
            "capacity = excluded.capacity",
            (worker_id, processor, version, host, pid, capacity),
        )


def remove_worker(conn: psycopg.Connection[Any], worker_id: str) -> None:
    with conn.transaction():
        conn.execute(f"delete from {SCHEMA}.workers where id = %s", (worker_id,))


def live_workers(conn: psycopg.Connection[Any], processor: str | None = None) -> list[dict[str, Any]]:
    sql = (
        f"select * from {SCHEMA}.workers where heartbeat > now() - make_interval(secs => %s)"
        + (" and processor = %s" if processor else "")
        + " order by processor, id"
    )
    args: tuple[Any, ...] = (LIVE_WORKER_S, processor) if processor else (LIVE_WORKER_S,)
    return list(conn.execute(sql, args).fetchall())


def processors(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return list(conn.execute(f"select * from {SCHEMA}.processors order by name, version").fetchall())


def task_state(
    conn: psycopg.Connection[Any], job_id: str, task_id: str, *, lock: bool = False
) -> tuple[str, int] | None:
    """(status, run) of a task row, None if there is none; `lock` holds a share lock on the row until the end
    of the caller's transaction (a cancel, which updates the row, waits for it)."""
    row = conn.execute(
        f"select status, run from {SCHEMA}.tasks where job_id = %s and id = %s"
        + (" for share" if lock else ""),
        (job_id, task_id),
    ).fetchone()
    return None if row is None else (str(row["status"]), int(row["run"]))


def job_owner(conn: psycopg.Connection[Any], job_id: str) -> str | None:
    """The user of a job, None if there is no such job."""
    row = conn.execute(f"select user_id from {SCHEMA}.jobs where id = %s", (job_id,)).fetchone()
    return None if row is None else str(row["user_id"])


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value)
