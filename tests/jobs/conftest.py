"""Real RabbitMQ and PostgreSQL for the job platform tests: one database and one queue prefix per session."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hrlc.jobs import jobstore
from hrlc.jobs.broker import Topology, delete
from hrlc.jobs.dag import LAND_COVER_PROCESSORS
from hrlc.jobs.service import JobService
from subprocesses import spawn, stop

PG_ADMIN = os.environ.get("HRLC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PROCESSORS = [
    *LAND_COVER_PROCESSORS,
    "flaky",
    "sleepy",
    "late-writer",
    "foreign-echo",
    "process-graph",
]


@pytest.fixture(scope="session")
def jobs_dsn() -> Iterator[str]:
    name = f"hrlc_jobs_test_{os.getpid()}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            conn.execute(f'create database "{name}"')
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN}: {e}")
    dsn = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    jobstore.migrate(dsn)  # what `hrlc migrate` does before the services start
    yield dsn
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def topo() -> Iterator[Topology]:
    t = Topology(f"hrlctest{os.getpid()}")
    yield t
    delete(t, PROCESSORS)


def wait_job(service: JobService, user: str, job_id: str, timeout: float = 30.0) -> str:
    """The job's final state (finished, error, canceled); AssertionError after `timeout` seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        status = service.get_job(user, job_id).status
        if status in ("finished", "error", "canceled"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {status} after {timeout} s")


@contextlib.contextmanager
def cluster(
    jobs_dsn: str, topo: Topology, lake: Path, workers: list[list[str]], log: Path
) -> Iterator[JobService]:
    """A status consumer and worker processes (`hrlc.jobs.worker` arguments each) on the local `lake` with the
    static catalogue, and a `JobService` over them; the processes' output goes to `log` (its end is printed)."""
    env = {
        **os.environ,
        "HRLC_STORE": str(lake),
        "HRLC_CATALOG": "static",
        "HRLC_JOBS_DSN": jobs_dsn,
        "HRLC_BROKER_PREFIX": topo.prefix,
        "HRLC_LOG_LEVEL": "INFO",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),  # test processors: tests.jobs.jobprocs
    }
    service = JobService(jobs_dsn, topology=topo)
    procs = [spawn(["hrlc.cli", "status-consumer"], env, log)]
    procs += [spawn(["hrlc.cli", "worker", *args], env, log) for args in workers]
    try:
        yield service
    finally:
        stop(procs)
        service.close()
        if log.exists():
            print(log.read_text()[-5000:])
