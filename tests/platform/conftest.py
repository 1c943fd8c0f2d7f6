"""Fixtures of the platform tests: one small chain run on the embedded default, the same run on S3 + pgstac,
and the STAC API served in-process by uvicorn on a free 127.0.0.1 port.

(No `__init__.py` here: a package named `platform` would shadow the standard library's; so test modules
get everything through fixtures, never by importing this file.)"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from hrlc import sample
from hrlc.catalog.pgstac import PgstacCatalog
from hrlc.catalog.static import StaticCatalog
from hrlc.jobs.runner import RunResult
from hrlc.lake.store import LocalStore, S3Store, Store
from hrlc.settings import Settings
from landcover import chain_dag, run_chain

PLATFORM_SIZE = 128
PLATFORM_YEAR = 2021
WRITE_TOKEN = "test-write-token"


@dataclass
class PlatformRun:
    repo: sample.SampleRepository
    store: Store
    catalog: StaticCatalog
    result: RunResult
    dag: Any
    year: int = PLATFORM_YEAR


@pytest.fixture(scope="session")
def small_repo(tmp_path_factory: pytest.TempPathFactory) -> sample.SampleRepository:
    return sample.generate(tmp_path_factory.mktemp("external-small"), size=PLATFORM_SIZE, year=PLATFORM_YEAR)


@pytest.fixture(scope="session")
def static_run(small_repo: sample.SampleRepository, tmp_path_factory: pytest.TempPathFactory) -> PlatformRun:
    """The embedded default: a local lake and the static catalogue."""
    store = LocalStore(tmp_path_factory.mktemp("lake-static"))
    catalog = StaticCatalog(store)
    dag = chain_dag(small_repo, year=PLATFORM_YEAR)
    return PlatformRun(small_repo, store, catalog, run_chain(small_repo, store, catalog, dag=dag), dag)


@pytest.fixture(scope="session")
def platform_run(
    small_repo: sample.SampleRepository, s3_server: Any, pgstac_dsn: str
) -> Iterator[PlatformRun]:
    """The platform: the lake on S3 (moto) and the pgstac catalogue (`HRLC_CATALOG` = DSN). GDAL's S3
    configuration comes from the store's settings (`hrlc.lake.store.raster_env`), none from this fixture."""
    bucket = s3_server.new_bucket("hrlc-platform-lake")
    settings = Settings(store=f"s3://{bucket}/lake", catalog=pgstac_dsn)
    store = S3Store(settings.store, settings)
    catalog = PgstacCatalog(store, pgstac_dsn)
    dag = chain_dag(small_repo, year=PLATFORM_YEAR)
    yield PlatformRun(small_repo, store, catalog, run_chain(small_repo, store, catalog, dag=dag), dag)
    catalog.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def serve_api() -> Iterator[Callable[..., str]]:
    """A factory: serve `hrlc.api.create_app(settings)` with uvicorn in a thread; returns the base URL."""
    from hrlc.api import create_app

    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(settings: Settings, root_path: str = "") -> str:
        port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", root_path=root_path
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def write_token() -> str:
    return WRITE_TOKEN


@pytest.fixture(scope="session")
def stac_api(platform_run: PlatformRun, pgstac_dsn: str, serve_api: Callable[..., str]) -> str:
    """URL of the STAC API (landing page) over the platform run's pgstac database, every hrlc collection
    published (anonymous reads; tests/platform/test_private_results.py tests what is not published)."""
    from hrlc.catalog.pgstac import collection_ids

    settings = Settings(
        store=platform_run.store.url,
        catalog=pgstac_dsn,
        api_write_token=WRITE_TOKEN,
        presign_ttl_s=600,
        stac_public_collections=collection_ids(),
    )
    base = serve_api(settings)
    return f"{base}/stac/"
