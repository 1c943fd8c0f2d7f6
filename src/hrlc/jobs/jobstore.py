"""The job store: jobs, their tasks, logs, and the processor/worker registry in PostgreSQL (schema `hrlc_jobs`).

Plain SQL over psycopg 3. `ensure_schema` creates everything idempotently (any process may call it first).
Task rows are keyed by (job_id, id), `id` being the DAG task id; `depends_on` holds the DAG edges.
States: jobs created -> queued -> running -> finished | error | canceled; tasks created -> queued -> running
-> finished | error | canceled. A terminal task state is never overwritten by a later status message, which
makes the status consumer idempotent under duplicates and redeliveries.
Runs: `jobs.run` counts the starts of a job (0 = never started); `start_job` increments it and gives the new
task rows the same `run`, which travels in task and status messages (message version 2), so statuses and dead
letters of an older run of the job are recognised and ignored, and a worker of an older run stops.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from hrlc.settings import Settings

SCHEMA = "hrlc_jobs"
LIVE_WORKER_S = 60  # a worker whose heartbeat is older than this is not live

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SCHEMA}.jobs (
    id text primary key,
    user_id text not null,
    title text,
    description text,
    process jsonb not null,
    status text not null default 'created',
    progress double precision not null default 0,
    created timestamptz not null default now(),
    updated timestamptz not null default now(),
    queued timestamptz,
    started timestamptz,
    finished timestamptz,
    error text
);
create index if not exists jobs_user_created on {SCHEMA}.jobs (user_id, created desc);
create table if not exists {SCHEMA}.tasks (
    job_id text not null references {SCHEMA}.jobs (id) on delete cascade,
    id text not null,
    seq integer not null default 0,
    processor text not null,
    processor_version text not null,
    params jsonb not null,
    status text not null default 'created',
    progress double precision not null default 0,
    attempts integer not null default 0,
    depends_on text[] not null default '{{}}',
    outputs jsonb not null default '[]',
    worker text,
    message text,
    updated timestamptz not null default now(),
    primary key (job_id, id)
);
create table if not exists {SCHEMA}.logs (
    id bigserial primary key,
    job_id text not null references {SCHEMA}.jobs (id) on delete cascade,
    task_id text,
    time timestamptz not null default now(),
    level text not null,
    message text not null
);
create index if not exists logs_job on {SCHEMA}.logs (job_id, id);
create table if not exists {SCHEMA}.processors (
    name text not null,
    version text not null,
    entry_point text not null,
    image text,
    updated timestamptz not null default now(),
    primary key (name, version)
);
create table if not exists {SCHEMA}.workers (
    id text primary key,
    processor text not null,
    processor_version text not null,
    host text,
    pid integer,
    capacity integer not null default 1,
    started timestamptz not null default now(),
    heartbeat timestamptz not null default now()
);
alter table {SCHEMA}.jobs add column if not exists run integer not null default 0;
alter table {SCHEMA}.tasks add column if not exists run integer not null default 0;
"""


def jobs_dsn(settings: Settings | None = None) -> str:
    """`Settings.jobs_dsn` (`HRLC_JOBS_DSN`; default the pgstac database of `HRLC_CATALOG`, else the local
    PostgreSQL as postgres)."""
    return (settings or Settings()).jobs_dsn


def connect(dsn: str | None = None, *, autocommit: bool = False) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(dsn or jobs_dsn(), row_factory=dict_row, autocommit=autocommit)


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """Create the schema and tables if missing (idempotent; serialised by an advisory lock)."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('hrlc_jobs.ensure_schema'))")
        conn.execute(DDL)


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
