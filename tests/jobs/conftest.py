"""Real RabbitMQ and PostgreSQL for the job platform tests: one database and one queue prefix per session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hrlc.jobs.broker import Topology, delete

PG_ADMIN = os.environ.get("HRLC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PROCESSORS = ["optical-preprocessing", "features", "classification", "flaky", "sleepy", "foreign-echo"]


@pytest.fixture(scope="session")
def jobs_dsn() -> Iterator[str]:
    name = f"hrlc_jobs_test_{os.getpid()}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            conn.execute(f'create database "{name}"')
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN}: {e}")
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def topo() -> Iterator[Topology]:
    t = Topology(f"hrlctest{os.getpid()}")
    yield t
    delete(t, PROCESSORS)


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
