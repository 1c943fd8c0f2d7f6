"""The STAC API of hrlc: stac-fastapi-pgstac over the pgstac catalogue, with writes behind a token.

What hrlc adds to the stock application of stac-fastapi-pgstac 7 (`instantiate_api`):
- the database comes from `HRLC_CATALOG` (a PostgreSQL DSN), not from `PG*` variables;
- extensions: query, sort, fields, filter (CQL2), token pagination, collection search (the stock set) and
  the transaction extension, whose routes need `Authorization: Bearer <HRLC_API_WRITE_TOKEN>`
  (401 without or with a wrong token, 403 when no token is configured; STAC-API error bodies);
- reads follow `hrlc.catalog.visibility`: anonymous callers see only the published collections
  (`HRLC_STAC_PUBLIC_COLLECTIONS`; none published = 401 for every collection and search), users (the openEO
  API's tokens, basic or OIDC, as `Authorization: Bearer basic//…` or `oidc/<provider>/…`) also the
  deployment's own items and the job products they own, operators and admins everything;
- `s3://` asset hrefs are presigned (read-only GET, `HRLC_PRESIGN_TTL_S`) in every item response, so a
  client downloads products straight from the lake without credentials;
- `root_path` (`HRLC_API_ROOT_PATH`) is honoured by the composing application (`hrlc.api.app`), so `/` and
  every link are right behind a proxy.
"""

# ruff: noqa: E402 (the log filter below goes before the stac_fastapi imports)
from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request

# stac-fastapi builds a default settings object at import and warns that its title is the default one; ours
# are set below, so that warning is noise. The filter must be in place before stac_fastapi is imported.
logging.getLogger("stac_fastapi.types.config").addFilter(
    lambda record: not record.getMessage().startswith("Using default values")
)

from fastapi.responses import JSONResponse
from stac_fastapi.api.routes import Scope
from stac_fastapi.pgstac.app import instantiate_api
from stac_fastapi.pgstac.config import PostgresSettings
from stac_fastapi.pgstac.config import Settings as ApiSettings
from stac_fastapi.pgstac.core import CoreCrudClient
from stac_fastapi.pgstac.db import close_db_connection, connect_to_db
from stac_fastapi.pgstac.models.extensions import Extensions

from hrlc import __version__
from hrlc.api.limits import Limits, RequestLimits, stac_error
from hrlc.api.presign import Presigner
from hrlc.catalog.visibility import Viewer, restrict
from hrlc.lake.store import Store
from hrlc.settings import Settings

# The routes of the transaction and bulk-transaction extensions: every write of the API.
WRITE_SCOPES: list[Scope] = [
    {"path": "/collections", "method": "POST"},
    {"path": "/collections/{collection_id}", "method": "PUT"},
    {"path": "/collections/{collection_id}", "method": "PATCH"},
    {"path": "/collections/{collection_id}", "method": "DELETE"},
    {"path": "/collections/{collection_id}/items", "method": "POST"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "PUT"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "PATCH"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "DELETE"},
    {"path": "/collections/{collection_id}/bulk_items", "method": "POST"},
]


class NotAuthorised(Exception):
    """A request without the credentials or the role it needs (401 or 403, STAC API error body)."""

    def __init__(self, description: str, status_code: int):
        super().__init__(description)
        self.description = description
        self.status_code = status_code


def write_guard(settings: Settings, authenticator: Any = None) -> Callable[[Request], None]:
    """A dependency that lets a write through with `Authorization: Bearer <api_write_token>`, or with a user's
    token (openEO basic or OIDC, `authenticator`) whose user has the `admin` role."""

    def require_write_role(request: Request) -> None:
        header = request.headers.get("authorization", "")
        given, is_write_token = _bearer(header, settings, "a bearer token is required for writes")
        if is_write_token:
            return
        expected = settings.api_write_token
        if authenticator is not None and given.startswith(("basic//", "oidc/")):
            viewer = _token_viewer(authenticator, header, ())
            if "admin" in viewer.roles:
                return
            raise NotAuthorised(
                f"{viewer.user} may not write to the catalogue: that needs the admin role", 403
            )
        if not expected:
            raise NotAuthorised("writes are disabled on this server (no write token configured)", 403)
        raise NotAuthorised("the bearer token does not allow writes", 401)

    return require_write_role


def _not_authorised(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotAuthorised)
    headers = {"WWW-Authenticate": 'Bearer realm="hrlc"'} if exc.status_code == 401 else None
    return JSONResponse(
        {"code": "Unauthorized" if exc.status_code == 401 else "Forbidden", "description": exc.description},
        status_code=exc.status_code,
        headers=headers,
    )


def viewer_of(request: Request) -> Viewer:
    """Who is reading: anonymous without `Authorization`; the write token reads as an admin; a user token of
    the openEO API (basic or OIDC) gives the user and their roles. A malformed or invalid token: 401. Decided
    once per request (an item route asks twice: for its collection and for its items)."""
    known: Viewer | None = getattr(request.state, "hrlc_viewer", None)
    if known is None:
        known = request.state.hrlc_viewer = _viewer(request)
    return known


def _viewer(request: Request) -> Viewer:
    state = request.app.state
    settings: Settings = state.hrlc_settings
    public = tuple(settings.stac_public_collections)
    header = request.headers.get("authorization", "")
    if not header:
        return Viewer(None, public=public)
    _, is_write_token = _bearer(
        header, settings, "use Authorization: Bearer <token> (a token of the openEO API)"
    )
    if is_write_token:
        return Viewer("write-token", frozenset({"admin"}), public)
    return _token_viewer(state.authenticator, header, public)


def _bearer(header: str, settings: Settings, refusal: str) -> tuple[str, bool]:
    """The bearer token of an `Authorization` header, and whether it is the write token; 401 `refusal` if the
    header holds no bearer token."""
    scheme, _, given = header.partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise NotAuthorised(refusal, 401)
    expected = settings.api_write_token
    return given, bool(expected) and hmac.compare_digest(given.encode(), str(expected).encode())


def _token_viewer(authenticator: Any, header: str, public: tuple[str, ...]) -> Viewer:
    """The user of an openEO API token (basic or OIDC) and their roles; 401 when the token is not valid."""
    from hrlc.api.openeo.errors import OpenEOError

    try:
        user = authenticator.user_of(header)
    except OpenEOError as e:
        raise NotAuthorised(f"the token is not valid: {e.message}", 401) from None
    return Viewer(user, authenticator.roles(user), public)


def _check_readable(viewer: Viewer, collections: list[str] | None) -> None:
    """401 when an anonymous caller asks for a collection that is not published (or for anything, when none is)."""
    if viewer.user is None and not viewer.public:
        raise NotAuthorised("this catalogue needs authentication: log in through the openEO API", 401)
    hidden = [c for c in collections or () if not viewer.may_read_collection(c)]
    if hidden:
        raise NotAuthorised(f"collection {hidden[0]!r} needs authentication", 401)


class PresigningClient(CoreCrudClient):
    """pgstac's core client: reads restricted to what the caller may see, `s3://` asset hrefs presigned.

    Every item response (`/search`, `/collections/{id}/items`, `/collections/{id}/items/{item}`) goes
    through `_search_base`, so this one override covers them all; collections through `get_collection` and
    `all_collections`."""

    async def _search_base(self, search_request: Any, request: Request) -> Any:
        viewer = viewer_of(request)
        _check_readable(viewer, getattr(search_request, "collections", None))
        if not viewer.sees_all:
            current = getattr(search_request, "filter_expr", None)
            if isinstance(current, str):  # cql2-text not yet converted (POST)
                from cql2 import Expr

                current = Expr(current).to_json()
            search_request.filter_expr = restrict(current, viewer)
            search_request.filter_lang = "cql2-json"
        collection = await super()._search_base(search_request, request=request)
        presigner: Presigner | None = getattr(request.app.state, "presigner", None)
        if presigner is not None:
            for feature in collection.get("features", []):
                presigner.item(feature)
        return collection

    async def get_collection(self, collection_id: str, request: Request, **kwargs: Any) -> Any:
        viewer = viewer_of(request)
        found = await super().get_collection(collection_id, request=request, **kwargs)  # 404 if none
        _check_readable(viewer, [collection_id])
        return found

    async def all_collections(self, request: Request, **kwargs: Any) -> Any:
        viewer = viewer_of(request)
        if viewer.user is None and not viewer.public:
            _check_readable(viewer, None)
        found = await super().all_collections(request, **kwargs)
        if viewer.user is None and isinstance(found, dict):  # anonymous: the published collections only
            shown = [c for c in found.get("collections", []) if c.get("id") in viewer.public]
            found["collections"] = shown
            found["numberReturned"] = len(shown)
            found.pop("numberMatched", None)
        return found


# ---------------------------------------------------------------------------------------- application
def postgres_settings(dsn: str) -> PostgresSettings:
    """stac-fastapi-pgstac's database settings from a PostgreSQL DSN (instead of `PG*` variables)."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(dsn)
    return PostgresSettings(
        pguser=str(info.get("user") or "postgres"),
        pgpassword=str(info.get("password") or ""),
        pghost=str(info.get("host") or "127.0.0.1"),
        pgport=int(info.get("port") or 5432),
        pgdatabase=str(info.get("dbname") or "postgres"),
    )


def catalog_dsn(settings: Settings) -> str:
    """The pgstac DSN of the settings; ValueError when the catalogue is the static one."""
    dsn = settings.catalog.strip()
    if not dsn.startswith(("postgresql://", "postgres://")):
        raise ValueError(
            f"the STAC API needs a pgstac catalogue: set HRLC_CATALOG to a postgresql:// DSN (is {dsn!r})"
        )
    return dsn


def create_stac_app(settings: Settings, lake: Store) -> FastAPI:
    """The STAC API application over the pgstac catalogue of `settings`, whose items' `s3://` hrefs in `lake`
    are presigned (not yet mounted; `hrlc.api.app.create_app` mounts it under `/stac`)."""
    pg = postgres_settings(catalog_dsn(settings))
    api_settings = ApiSettings(
        stac_fastapi_title="hrlc STAC API",
        stac_fastapi_description="Products of the ESA CCI High Resolution Land Cover production system",
        stac_fastapi_version=__version__,
        stac_fastapi_landing_id="hrlc",
        enabled_extensions=None,  # all of: query, sort, fields, filter, pagination, collection_search
        enable_transactions_extensions=True,
        openapi_url="/api",
        docs_url="/api.html",
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await connect_to_db(app, postgres_settings=pg, add_write_connection_pool=True)
        try:
            yield
        finally:
            await close_db_connection(app)

    api = instantiate_api(
        client=PresigningClient,
        extensions=Extensions(settings=api_settings),
        lifespan=lifespan,
        settings=api_settings,
    )
    app = api.app
    api.client.landing_page_id = "hrlc"
    app.state.presigner = Presigner(lake, settings.presign_ttl_s)
    app.state.hrlc_settings = settings
    from hrlc.api.openeo.auth import Authenticator

    authenticator = Authenticator(settings)  # the openEO API's users and OIDC providers: admins may write
    app.state.authenticator = authenticator
    api.add_route_dependencies(
        scopes=WRITE_SCOPES, dependencies=[Depends(write_guard(settings, authenticator))]
    )
    app.add_exception_handler(NotAuthorised, _not_authorised)
    for exc in _bad_input_errors():
        app.add_exception_handler(exc, _bad_request)
    for exc in _unavailable_errors():
        app.add_exception_handler(exc, _unavailable)
    app.add_middleware(RequestLimits, limits=Limits.from_settings(settings), error=stac_error)
    return app


def _bad_input_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean the request was wrong, not the server: pgstac refusing a paging token, a CQL2 or
    `q` expression or a value (`RAISE`, syntax and data errors), and undecodable JSON in a query parameter."""
    import asyncpg.exceptions as pg

    return (pg.RaiseError, pg.PostgresSyntaxError, pg.DataError, json.JSONDecodeError)


def _unavailable_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean the catalogue database cannot be reached (down, restarting, connection lost)."""
    import asyncpg.exceptions as pg

    return (OSError, pg.PostgresConnectionError, pg.InterfaceError, pg.CannotConnectNowError)


def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    logging.getLogger(__name__).warning("503 for %s %s: catalogue database unavailable (%s)",
                                        request.method, request.url.path, type(exc).__name__)  # fmt: skip
    return JSONResponse(
        {
            "code": "ServiceUnavailable",
            "description": "the catalogue database cannot be reached: try again later",
        },
        status_code=503,
        headers={"Retry-After": "5"},
    )


def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return JSONResponse({"code": "InvalidQueryParameter", "description": first}, status_code=400)
