"""Schema changes happen once, on purpose (issue 11): `hrlc migrate` creates and upgrades the job store; a
process only checks the version as it starts (no DDL, no lock), and refuses in one line when it is behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from hrlc.jobs.broker import Topology, delete
from subprocesses import spawn, stop

HRLC = [sys.executable, "-c", "import sys; from hrlc.cli import main; sys.argv[0] = 'hrlc'; main()"]

# The job store as releases before versioned migrations (main until 2026-12-07) created it at process start.
PRE_MIGRATION_DDL = (Path(__file__).parent / "pre_migration_job_store.sql").read_text()


def _hrlc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HRLC, *args], capture_output=True, text=True, timeout=120, env=env)


def test_a_database_of_the_previous_release_upgrades_and_keeps_its_jobs(empty_db: str) -> None:
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(PRE_MIGRATION_DDL)
        conn.execute(
            "insert into hrlc_jobs.jobs (id, user_id, process, status, run) values ('j1', 'alice', '{}', 'finished', 2)"
        )
    behind = _hrlc("migrate", "--check", "--only", "jobs", "--jobs-dsn", empty_db)
    assert behind.returncode == 1 and "behind" in behind.stderr + behind.stdout
    done = _hrlc("migrate", "--only", "jobs", "--jobs-dsn", empty_db)
    assert done.returncode == 0, done.stderr
    assert "migrated to version 1" in done.stderr + done.stdout
    again = _hrlc("migrate", "--only", "jobs", "--jobs-dsn", empty_db)
    assert again.returncode == 0 and "current: version 1" in again.stderr + again.stdout
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select user_id, status, run from hrlc_jobs.jobs").fetchall() == [
            ("alice", "finished", 2)
        ]
    assert _hrlc("migrate", "--check", "--only", "jobs", "--jobs-dsn", empty_db).returncode == 0


@pytest.mark.parametrize("command", [["worker", "--processor", "features"], ["status-consumer"]])
def test_processes_refuse_a_schema_that_is_behind_in_one_line(empty_db: str, command: list[str]) -> None:
    env = {**os.environ, "HRLC_JOBS_DSN": empty_db, "HRLC_BROKER_PREFIX": f"hrlcschema{os.getpid()}"}
    done = _hrlc(*command, env=env)
    assert done.returncode == 2, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "is at version 0, this hrlc needs 1: run `hrlc migrate`" in lines[0], (
        done.stderr
    )
    with psycopg.connect(empty_db) as conn:  # and they created nothing
        assert conn.execute("select to_regnamespace('hrlc_jobs')").fetchone() == (None,)


def test_a_starting_worker_takes_no_lock_a_job_transaction_holds(empty_db: str, tmp_path: Path) -> None:
    """The deadlock of issue 11: a worker starting while a transaction holds job rows. Now the worker only reads
    the migrations ledger: it starts while another transaction holds the job store's tables exclusively."""
    assert _hrlc("migrate", "--only", "jobs", "--jobs-dsn", empty_db).returncode == 0
    topo = Topology(f"hrlclock{os.getpid()}")
    env = {
        **os.environ,
        "HRLC_JOBS_DSN": empty_db,
        "HRLC_BROKER_PREFIX": topo.prefix,
        "HRLC_LOG_LEVEL": "INFO",
    }
    log = tmp_path / "worker.log"
    with psycopg.connect(empty_db) as holder:
        holder.execute("insert into hrlc_jobs.jobs (id, user_id, process) values ('j1', 'alice', '{}')")
        holder.execute("select * from hrlc_jobs.jobs where id = 'j1' for update")
        holder.execute("lock table hrlc_jobs.jobs, hrlc_jobs.tasks, hrlc_jobs.logs in access exclusive mode")
        worker = spawn(["hrlc.cli", "worker", "--processor", "features"], env, log)
        try:
            deadline = time.monotonic() + 30
            while "consuming" not in log.read_text(errors="replace"):
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"the worker did not start:\n{log.read_text()}"
                time.sleep(0.1)
            holder.execute("update hrlc_jobs.jobs set status = 'queued' where id = 'j1'")
            holder.commit()  # no DeadlockDetected
        finally:
            stop([worker])
            delete(topo, ["features"])
