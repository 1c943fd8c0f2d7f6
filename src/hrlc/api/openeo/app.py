"""The openEO API application (openEO API 1.2.0), mounted by `hrlc.api.app` under `/openeo`.

| routes                                                         | module            |
|----------------------------------------------------------------|-------------------|
| `/`, `/.well-known/openeo`, `/conformance`, `/file_formats`,   | `discovery`       |
| `/collections[/{id}]`, `/processes`, `/credentials/basic`, `/me` |                  |
| `/credentials/oidc` (only with `HRLC_OIDC_PROVIDERS`)          |                   |
| `/process_graphs[/{id}]`                                       | `process_graphs`  |
| `/validation`, `/result`                                       | `sync`            |
| `/jobs...` (only when `hrlc.jobs.service` is installed)        | `jobs`            |

Errors are openEO error JSON (`errors`), every response carries CORS headers, and `/` lists exactly the
routes registered here. Repeated slashes in a path count as one (`/openeo//jobs/x` is `/openeo/jobs/x`), as
behind most proxies: clients that join a base URL ending in `/` with `/jobs` still reach the route.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from hrlc import __version__
from hrlc.api.limits import Limits, RequestLimits, openeo_error
from hrlc.api.openeo import discovery, errors, process_graphs, sync
from hrlc.api.openeo.context import OpenEOContext, jobs_available
from hrlc.api.openeo.udp import ProcessGraphs
from hrlc.backends import Backends
from hrlc.settings import Settings

# Response headers a browser client must be able to read (openEO API, "Cross-Origin Resource Sharing").
EXPOSED_HEADERS = ["Location", "OpenEO-Identifier", "OpenEO-Costs", "Link"]


class MergeSlashes:
    """ASGI middleware: `//` (and longer runs of `/`) in the request path count as one `/`."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"} and "//" in scope["path"]:
            scope = {**scope, "path": re.sub(r"/{2,}", "/", scope["path"])}
        await self.app(scope, receive, send)


def create_openeo_app(settings: Settings, backends: Backends, graphs: ProcessGraphs | None = None) -> FastAPI:
    """The openEO API application over `backends` (not yet mounted; `hrlc.api.app.create_app` mounts it).
    User-defined processes live in `graphs` (default: the catalogue's PostgreSQL, `OpenEOContext.create`)."""
    app = FastAPI(
        title="hrlc openEO API",
        version=__version__,
        openapi_url="/api",
        docs_url="/api.html",
        redoc_url=None,
    )
    ctx = OpenEOContext.create(settings, backends)
    if graphs is not None:
        ctx.process_graphs = graphs
    app.state.openeo = ctx
    routers = [discovery.router, process_graphs.router, sync.router]
    if settings.oidc_providers:
        routers.append(discovery.oidc_router)
    if jobs_available():
        from hrlc.api.openeo import jobs

        routers.append(jobs.router)
    for router in routers:
        app.include_router(router)
    app.state.endpoints = discovery.endpoints(routers)
    errors.install(app)
    # inside CORS, so that a browser can read the refusals too
    app.add_middleware(
        RequestLimits,
        limits=Limits.from_settings(settings),
        error=openeo_error,
        unsupported=(400, "ContentTypeInvalid"),  # the openEO API's code for a media type it does not take
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origin_regex=".*",
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
    )
    app.add_middleware(MergeSlashes)
    return app
