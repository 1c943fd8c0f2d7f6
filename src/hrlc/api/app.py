"""The hrlc web application: a table of contents of the APIs it serves.

| mount     | application                        | module            |
|-----------|------------------------------------|-------------------|
| `/stac`   | STAC API (stac-fastapi-pgstac)     | `hrlc.api.stac`   |
| `/openeo` | openEO API 1.2.0                   | `hrlc.api.openeo` |

`/.well-known/openeo` (at the root, where openEO clients look) points to the openEO API. Mounted
applications do not run their own lifespan, so this one enters theirs. `root_path` (`HRLC_API_ROOT_PATH`)
is the prefix a proxy serves us under; uvicorn gets it (`hrlc serve --root-path`), and every link the APIs
build starts with it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from hrlc import __version__
from hrlc.backends import Backends
from hrlc.settings import Settings

log = logging.getLogger(__name__)

STAC_MOUNT = "/stac"
OPENEO_MOUNT = "/openeo"


class _OwnRoot:
    """Makes a mounted application build its URLs from its own mount point.

    Starlette's `request.base_url` starts at `app_root_path`, the root of the outermost application, so
    the links of a mounted STAC API would miss `/stac`; this sets it to the mount's `root_path` (and lets
    the mounted application resolve `url_for` names in its own router)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"}:
            scope = {**scope, "app_root_path": scope.get("root_path", "")}
            scope.pop("router", None)  # so that `url_for` names resolve in the mounted application
        await self.app(scope, receive, send)


def check_schemas(settings: Settings) -> None:
    """`SchemaBehind` (a ValueError for `hrlc serve`'s one-line refusal) when a database the API uses is reachable
    and its schema older than the code; an unreachable one is no reason not to start (503 until it is back)."""
    import psycopg

    from hrlc.api.openeo import udp
    from hrlc.db import migrations
    from hrlc.jobs import jobstore
    from hrlc.settings import pg_dsn

    checks = [(settings.jobs_dsn, jobstore.COMPONENT, jobstore.MIGRATIONS)]
    catalog = pg_dsn(settings.catalog)
    if catalog:
        checks.append((catalog, udp.COMPONENT, udp.MIGRATIONS))
    for dsn, component, folder in checks:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                migrations.check(conn, component, folder)
        except psycopg.OperationalError as e:
            log.warning(
                "the %s database is unreachable at start (%s): requests needing it get 503", component, e
            )
        except migrations.SchemaBehind as e:
            raise ValueError(str(e)) from None


def create_app(settings: Settings, backends: Backends | None = None) -> FastAPI:
    """The application served by `hrlc serve`, configured by `settings`, over `backends` (default: the back ends
    `settings` name, `Backends.from_settings`; route tests give in-memory fakes)."""
    from hrlc.api.health import router as health_router
    from hrlc.api.openeo import create_openeo_app
    from hrlc.api.openeo.discovery import well_known
    from hrlc.api.stac import create_stac_app

    if not settings.token_secret:  # one secret for both APIs (the STAC API checks the openEO API's tokens)
        import secrets

        settings = settings.model_copy(update={"token_secret": secrets.token_urlsafe(32)})
    if backends is None:
        check_schemas(settings)
        backends = Backends.from_settings(settings)
    mounts: dict[str, FastAPI] = {
        STAC_MOUNT: create_stac_app(settings, backends.store),
        OPENEO_MOUNT: create_openeo_app(settings, backends),
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for sub in mounts.values():
                await stack.enter_async_context(sub.router.lifespan_context(sub))
            stack.callback(backends.close)  # the catalogue's and the jobs' connections
            yield

    app = FastAPI(title="hrlc", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.hrlc_settings = settings
    app.include_router(health_router)  # /health/live, /health/ready
    for path, sub in mounts.items():
        app.mount(path, _OwnRoot(sub))

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> dict[str, object]:
        base = str(request.base_url).rstrip("/")
        return {
            "title": "hrlc",
            "version": __version__,
            "links": [
                {
                    "rel": "service",
                    "href": f"{base}{STAC_MOUNT}/",
                    "type": "application/json",
                    "title": "STAC API",
                },
                {
                    "rel": "service",
                    "href": f"{base}{OPENEO_MOUNT}/",
                    "type": "application/json",
                    "title": "openEO API",
                },
            ],
        }

    @app.get("/.well-known/openeo", include_in_schema=False)
    def openeo_versions(request: Request) -> dict[str, object]:
        return well_known(str(request.base_url).rstrip("/") + OPENEO_MOUNT)

    return app
