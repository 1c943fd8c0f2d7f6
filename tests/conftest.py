"""Shared fixtures: where the shared real samples are, and small deterministic helpers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from landcover import Reference

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The `shared/` folder beside the project clone (override with HRLC_SHARED)."""
    return Path(os.environ.get("HRLC_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    d = shared_dir()
    if not (d / "data").is_dir():
        pytest.fail(f"shared data not found at {d}; set HRLC_SHARED")
    return d


@pytest.fixture(scope="session")
def land_cover_reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The 96 px synthetic repository and the class map the in-process runner makes from it (tests/landcover.py),
    for every suite that compares a platform run with it (made once a session)."""
    from landcover import make_reference

    return make_reference(tmp_path_factory.mktemp("land-cover-reference"))


# ----------------------------------------------------------------------------------------------- services
# Real servers, never mocks: PostgreSQL/PostGIS + pgstac (scripts/services.sh installs and starts it) and
# moto's S3 server on 127.0.0.1. Each test session gets its own database and its own S3 server.

PG_ADMIN_DSN = os.environ.get("HRLC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _new_pgstac_db(name: str) -> str:
    import psycopg
    from pypgstac.db import PgstacDB
    from pypgstac.migrate import Migrate

    try:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            conn.execute(f'create database "{name}"')
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN_DSN} ({e}); run scripts/services.sh")
    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute("create extension if not exists postgis; create extension if not exists btree_gist")
        except psycopg.errors.FeatureNotSupported as e:
            pytest.fail(f"PostGIS is not installed ({e}); run scripts/services.sh")
    with PgstacDB(dsn=dsn) as db:
        Migrate(db).run_migration()
    migrate_hrlc(dsn)
    return dsn


def migrate_hrlc(dsn: str) -> None:
    """Apply hrlc's migrations of the catalogue and job-store components to `dsn` (what `hrlc migrate` does)."""
    from hrlc.api.openeo import udp
    from hrlc.catalog import ingest
    from hrlc.db import migrations
    from hrlc.jobs import jobstore

    jobstore.migrate(dsn)
    migrations.migrate(dsn, udp.COMPONENT, udp.MIGRATIONS)
    migrations.migrate(dsn, ingest.COMPONENT, ingest.MIGRATIONS)


@pytest.fixture
def empty_db() -> Iterator[str]:
    """DSN of a fresh, empty database (no extension, no schema), dropped after the test."""
    import psycopg

    name = f"hrlc_test_empty_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    yield PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def pgstac_dsn() -> str:
    """DSN of a fresh database migrated to pgstac, for this test session."""
    return _new_pgstac_db(f"hrlc_test_{os.getpid()}")


@pytest.fixture(scope="session")
def pgstac_db_factory() -> Iterator[Callable[[str], str]]:
    """Makes more fresh pgstac databases (`factory("api")`), for suites whose data must not meet the items that
    other suites count in `pgstac_dsn`; all are dropped at the end of the session."""
    import psycopg

    names: list[str] = []

    def factory(suffix: str) -> str:
        name = f"hrlc_test_{os.getpid()}_{suffix}"
        names.append(name)
        return _new_pgstac_db(name)

    yield factory
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        for name in names:
            conn.execute(f'drop database if exists "{name}" with (force)')


@dataclass
class S3Server:
    endpoint: str
    host_port: str
    region: str = "us-east-1"
    access_key: str = "testing"
    secret_key: str = "testing"

    def client(self):  # noqa: ANN201
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def new_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 (a real HTTP endpoint), with the process environment set the way GDAL's
    /vsis3/ and boto3 read it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3 = S3Server(endpoint=f"http://127.0.0.1:{port}", host_port=f"127.0.0.1:{port}")
    env = {
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": s3.region,
        "HRLC_S3_ENDPOINT": s3.endpoint,
        "HRLC_S3_ACCESS_KEY_ID": s3.access_key,
        "HRLC_S3_SECRET_ACCESS_KEY": s3.secret_key,
        "HRLC_S3_REGION": s3.region,
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield s3
    finally:
        server.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
