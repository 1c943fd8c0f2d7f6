"""Discovery and account routes: `/`, `/.well-known/openeo`, `/conformance`, `/file_formats`,
`/udf_runtimes`, `/service_types`, `/collections`, `/processes`, `/credentials/basic`, `/me`.

`/udf_runtimes` and `/service_types` answer `{}`: this back end runs no UDFs and offers no secondary web
services, and says so (rather than 404) to clients that ask."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute

from hrlc import __version__
from hrlc.api.openeo.auth import current_user
from hrlc.api.openeo.collections import get_collection, openeo_collection
from hrlc.api.openeo.context import OpenEOContext, base_url, context
from hrlc.api.openeo.processes import OUTPUT_FORMATS, predefined
from hrlc.catalog.static import STAC_VERSION

API_VERSION = "1.2.0"

CONFORMANCE = [
    "https://api.openeo.org/1.2.0",
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
]

router = APIRouter()


def endpoints(routers: list[APIRouter]) -> list[dict[str, Any]]:
    """The endpoints of routers in the capabilities' format (from their routes: it lists what is there)."""
    methods: dict[str, set[str]] = {}
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                methods.setdefault(route.path, set()).update(m for m in route.methods or () if m != "HEAD")
    return [{"path": p, "methods": sorted(m)} for p, m in methods.items()]


def well_known(base: str) -> dict[str, Any]:
    """The `/.well-known/openeo` document for an openEO API at `base`."""
    return {"versions": [{"url": f"{base}/", "api_version": API_VERSION, "production": False}]}


@router.get("/")
def capabilities(request: Request) -> dict[str, Any]:
    base = base_url(request)
    return {
        "api_version": API_VERSION,
        "backend_version": __version__,
        "stac_version": STAC_VERSION,
        "type": "Catalog",
        "id": "hrlc",
        "title": "hrlc openEO API",
        "description": (
            "openEO API of the ESA CCI High Resolution Land Cover production system: the product "
            "collections of the catalogue and the `hrlc_land_cover` process, run as batch jobs."
        ),
        "production": False,
        "endpoints": request.app.state.endpoints,
        "links": [
            {"rel": "self", "href": f"{base}/", "type": "application/json"},
            {"rel": "conformance", "href": f"{base}/conformance", "type": "application/json"},
            {"rel": "data", "href": f"{base}/collections", "type": "application/json"},
            {"rel": "version-history", "href": f"{base}/.well-known/openeo", "type": "application/json"},
        ],
    }


@router.get("/.well-known/openeo")
def versions(request: Request) -> dict[str, Any]:
    return well_known(base_url(request))


@router.get("/conformance")
def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


@router.get("/file_formats")
def file_formats() -> dict[str, Any]:
    return {"input": {}, "output": OUTPUT_FORMATS}


@router.get("/udf_runtimes")
def udf_runtimes() -> dict[str, Any]:
    return {}


@router.get("/service_types")
def service_types() -> dict[str, Any]:
    return {}


@router.get("/collections")
def collections(request: Request, ctx: OpenEOContext = Depends(context)) -> dict[str, Any]:
    base = base_url(request)
    docs = [openeo_collection(c, base, None) for c in ctx.catalog.collections()]
    for d in docs:  # the list stays light: no cube metadata from sample items, no summaries
        d.pop("summaries", None)
        d.pop("cube:dimensions", None)
        d["stac_extensions"] = [e for e in d["stac_extensions"] if "datacube" not in e]
    return {
        "collections": docs,
        "links": [{"rel": "self", "href": f"{base}/collections", "type": "application/json"}],
    }


@router.get("/collections/{collection_id}")
def collection(collection_id: str, request: Request, ctx: OpenEOContext = Depends(context)) -> dict[str, Any]:
    return get_collection(ctx.catalog, collection_id, base_url(request))


@router.get("/processes")
def processes() -> dict[str, Any]:
    return {"processes": list(predefined().values()), "links": []}


@router.get("/credentials/basic")
def credentials_basic(request: Request, ctx: OpenEOContext = Depends(context)) -> dict[str, Any]:
    address = request.client.host if request.client else ""
    _user, token = ctx.authenticator.login(request.headers.get("authorization"), address)
    return {"access_token": token}


oidc_router = APIRouter()  # included only when providers are configured (the API wants a non-empty list)


@oidc_router.get("/credentials/oidc")
def credentials_oidc(ctx: OpenEOContext = Depends(context)) -> dict[str, Any]:
    """The OpenID Connect providers whose access tokens this API accepts (`HRLC_OIDC_PROVIDERS`)."""
    return {"providers": ctx.authenticator.oidc.describe()}


@router.get("/me")
def me(request: Request, user: str = Depends(current_user)) -> dict[str, Any]:
    base = base_url(request)
    return {
        "user_id": user,
        "name": user,
        "links": [{"rel": "related", "href": f"{base}/jobs", "title": "Batch jobs"}],
    }
