"""Fixtures of the openEO API tests: the composed application (`hrlc.api.app`) over a fresh pgstac database,
served by uvicorn on a free 127.0.0.1 port; two users in a users file; every response recorded and checked
against the openEO API 1.2.0 `openapi.yaml` after each test."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.openapi_check import OpenAPIResponses
from hrlc.api.openeo.auth import hash_password
from hrlc.settings import Settings

USERS = {"alice": "alice-password", "bob": "bob-password"}
SECRET = "test-token-secret-of-at-least-32-bytes"
OPENEO = "/openeo"
EXTENSIONS = {f"{OPENEO}/processors"}


@dataclass
class Recorder:
    """A pure ASGI middleware that keeps (method, path, status, content type, body) of every response."""

    app: ASGIApp
    seen: list[tuple[str, str, int, str, bytes]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, ctype, chunks = 0, "", []

        async def keep(message: Message) -> None:
            nonlocal status, ctype
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
                ctype = headers.get("content-type", "")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, keep)
        self.seen.append((scope["method"], scope["path"], status, ctype, b"".join(chunks)))


@dataclass
class Server:
    url: str  # the openEO API root, ending without /
    root: str
    settings: Settings
    recorder: Recorder
    dsn: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer basic//{token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def token(self, user: str) -> str:
        r = httpx.get(f"{self.url}/credentials/basic", auth=(user, USERS[user]), timeout=30)
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed_catalogue(dsn: str, lake: Path) -> None:
    """The product collections and one class-map item (so a collection has bands)."""
    from hrlc.catalog.pgstac import PgstacCatalog
    from hrlc.lake.store import LocalStore

    item = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": "classified_map_optical_2021_annual",
        "collection": "hrlc-class-maps",
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[10, 45], [10.1, 45], [10.1, 45.1], [10, 45.1], [10, 45]]],
        },
        "bbox": [10, 45, 10.1, 45.1],
        "properties": {"datetime": "2021-07-01T00:00:00Z", "hrlc:product": "class-map", "hrlc:year": 2021},
        "assets": {
            "data": {
                "href": "file:///nowhere/class-map.tif",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
                "eo:bands": [{"name": "class"}],
            }
        },
        "links": [],
    }
    store = LocalStore(lake)
    with PgstacCatalog(store, dsn) as cat:
        cat.load([item, _composite_item(store)])


COMPOSITE_EPSG = 32632
COMPOSITE_ORIGIN = (500_000.0, 5_000_400.0)  # upper left, metres; 40 x 40 pixels of 10 m


def composite_bands() -> Any:
    """The deterministic pixels of the test composite: bands red, nir (uint16)."""
    import numpy as np

    rows, cols = np.mgrid[0:40, 0:40]
    return np.stack([rows * 100 + cols, 5000 + rows * 100 + cols]).astype("uint16")


def _composite_item(store: Any) -> dict[str, Any]:
    """A real two-band GeoTIFF in the lake and its item (collection hrlc-optical-composites)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.warp import transform_bounds

    key = "products/optical-composite/test/composite.tif"
    transform = from_origin(*COMPOSITE_ORIGIN, 10, 10)
    with store.writing(key) as path, rasterio.open(
        path, "w", driver="GTiff", width=40, height=40, count=2, dtype="uint16",
        crs=f"EPSG:{COMPOSITE_EPSG}", transform=transform, nodata=0,
    ) as dst:  # fmt: skip
        dst.write(composite_bands())
    x0, y1 = COMPOSITE_ORIGIN
    w, s, e, n = transform_bounds(f"EPSG:{COMPOSITE_EPSG}", "EPSG:4326", x0, y1 - 400, x0 + 400, y1)
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
        ],
        "id": "optical_composite_test_2021_07",
        "collection": "hrlc-optical-composites",
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "bbox": [w, s, e, n],
        "properties": {
            "datetime": "2021-07-01T00:00:00Z",
            "proj:code": f"EPSG:{COMPOSITE_EPSG}",
            "proj:shape": [40, 40],
            "proj:transform": list(transform)[:6],
        },
        "assets": {
            "data": {
                "href": store.href(key),
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
                "eo:bands": [{"name": "red"}, {"name": "nir"}],
                "raster:bands": [{"data_type": "uint16", "nodata": 0}] * 2,
            }
        },
        "links": [],
    }


@pytest.fixture(scope="session")
def openapi() -> OpenAPIResponses:
    shared = Path(os.environ.get("HRLC_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
    path = shared / "schemas" / "openeo-api" / "1.2.0" / "openapi.yaml"
    if not path.is_file():
        pytest.fail(f"openEO API spec not found at {path}; set HRLC_SHARED")
    return OpenAPIResponses(path)


@pytest.fixture(scope="session")
def server(
    pgstac_db_factory: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    pgstac_dsn = pgstac_db_factory("api")  # its own: the platform tests count every item of theirs
    from hrlc.api.app import create_app

    tmp = tmp_path_factory.mktemp("openeo-api")
    users = tmp / "users.json"
    users.write_text(json.dumps({u: hash_password(p) for u, p in USERS.items()}))
    lake = tmp / "lake"
    _seed_catalogue(pgstac_dsn, lake)
    env = {"HRLC_JOBS_DSN": pgstac_dsn, "HRLC_BROKER_PREFIX": f"hrlc-test-api-{os.getpid()}"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    settings = Settings(
        catalog=pgstac_dsn,
        store=f"file://{lake}",
        users_file=str(users),
        token_secret=SECRET,
        token_ttl_s=300,
        sync_max_pixels=1_000_000,
        api_login_max_attempts=100_000,  # the whole session logs in from 127.0.0.1 (test_login.py tests the limit)
        job_sources=["/data/"],  # what land_cover_process names (issue 10: inputs must be allowed)
        job_training=["/data/"],
    )
    recorder = Recorder(create_app(settings))
    port = _free_port()
    config = uvicorn.Config(recorder, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    root = f"http://127.0.0.1:{port}"
    try:
        yield Server(f"{root}{OPENEO}", root, settings, recorder, pgstac_dsn)
    finally:
        uv.should_exit = True
        thread.join(10)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(autouse=True)
def responses_follow_the_spec(server: Server, openapi: OpenAPIResponses) -> Iterator[None]:
    """After each test: every openEO response it caused validates against openapi.yaml."""
    start = len(server.recorder.seen)
    yield
    checked = 0
    for method, raw_path, status, ctype, body in server.recorder.seen[start:]:
        path = re.sub(r"/{2,}", "/", raw_path)  # the API takes `//` as `/` (test_compliance)
        if path == "/.well-known/openeo":
            openapi.check(method, path, status, ctype, body)
        elif path in EXTENSIONS:
            continue  # hrlc extensions of the openEO API (docs/openeo.md): not in openapi.yaml
        elif path.startswith(OPENEO) and method != "OPTIONS":
            openapi.check(method, path.removeprefix(OPENEO) or "/", status, ctype, body)
        else:
            continue
        checked += 1


@pytest.fixture(scope="session")
def tokens(server: Server) -> dict[str, str]:
    return {u: server.token(u) for u in USERS}


def land_cover_process(**overrides: Any) -> dict[str, Any]:
    """A batch-job process graph: hrlc_land_cover then save_result."""
    args: dict[str, Any] = {
        "spatial_extent": {"west": 10.0, "south": 45.0, "east": 10.05, "north": 45.05},
        "year": 2021,
        "sensor": "sentinel2",
        "source": "/data/catalog.json",
        "training": "/data/training.gpkg",
        "classifier": "rf",
        "composite": "median",
    }
    args.update(overrides)
    return {
        "process_graph": {
            "lc": {"process_id": "hrlc_land_cover", "arguments": args},
            "save": {
                "process_id": "save_result",
                "arguments": {"data": {"from_node": "lc"}, "format": "GTiff"},
                "result": True,
            },
        }
    }
