"""The openEO API over fakes of its ports: no PostgreSQL, no RabbitMQ, each test in milliseconds.

`create_openeo_app(settings, backends, graphs)` gets the embedded catalogue and lake (`StaticCatalog` over a
`LocalStore` in the test's folder) and the in-memory `MemoryJobs` and `MemoryProcessGraphs` (`fakes.py`). Every
response is validated against the openEO API 1.2.0 `openapi.yaml`, as the real-server suite (`tests/api`) does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.openapi_check import OpenAPIResponses
from api_routes.fakes import MemoryJobs, MemoryProcessGraphs
from hrlc.api.openeo import create_openeo_app
from hrlc.api.openeo.auth import hash_password
from hrlc.backends import Backends
from hrlc.catalog.static import StaticCatalog
from hrlc.lake.store import LocalStore
from hrlc.settings import Settings

USERS = {"alice": "alice-password", "bob": "bob-password"}
SECRET = "test-token-secret-of-at-least-32-bytes"
EXTENSIONS = {"/processors"}  # hrlc extensions of the openEO API (docs/openeo.md): not in openapi.yaml


@pytest.fixture(scope="session")
def openapi(shared: Path) -> OpenAPIResponses:
    return OpenAPIResponses(shared / "schemas" / "openeo-api" / "1.2.0" / "openapi.yaml")


@dataclass
class Api:
    """The application, its fakes and a client per user."""

    client: TestClient
    jobs: MemoryJobs
    graphs: MemoryProcessGraphs
    catalog: StaticCatalog
    store: LocalStore

    def token(self, user: str) -> str:
        r = self.client.get("/credentials/basic", auth=(user, USERS[user]))
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer basic//{self.token(user)}"}


@pytest.fixture
def api(tmp_path: Path, openapi: OpenAPIResponses) -> Iterator[Api]:
    users = tmp_path / "users.json"
    users.write_text(json.dumps({u: hash_password(p) for u, p in USERS.items()}))
    settings = Settings(
        catalog="static",
        store=str(tmp_path / "lake"),
        users_file=str(users),
        token_secret=SECRET,
        api_login_max_attempts=100_000,
        job_sources=["/data/"],
        job_training=["/data/"],
    )
    store = LocalStore(tmp_path / "lake", settings)
    catalog = StaticCatalog(store)
    jobs, graphs = MemoryJobs(), MemoryProcessGraphs()
    app = create_openeo_app(settings, Backends(settings, store, catalog, jobs_backend=jobs), graphs)

    def follows_the_spec(response: httpx.Response) -> None:
        response.read()
        path = re.sub(r"/{2,}", "/", response.request.url.path)
        if response.request.method != "OPTIONS" and path not in EXTENSIONS:
            ctype = response.headers.get("content-type", "")
            openapi.check(response.request.method, path, response.status_code, ctype, response.content)

    with TestClient(app) as client:
        client.event_hooks = {"request": [], "response": [follows_the_spec]}
        yield Api(client, jobs, graphs, catalog, store)
