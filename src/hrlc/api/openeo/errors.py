"""openEO error responses: `{"id", "code", "message", "links"}` with the HTTP status of the code.

Every failure of the openEO API goes out through here: our own `OpenEOError`s, FastAPI's request validation
errors (400 `BadRequest`), Starlette's HTTP errors (404 `NotFound`, 405 `MethodNotAllowed`) and anything
unexpected (500 `Internal`, with the id in the server log); an unreachable database or broker is 503
`ServiceUnavailable` with `Retry-After` (the request may be repeated). Codes and statuses follow the API's
`errors.json`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

# HTTP status of each openEO error code we raise (from the API's errors.json; BadRequest is ours).
STATUS: dict[str, int] = {
    "BadRequest": 400,
    "AuthenticationRequired": 401,
    "AuthenticationSchemeInvalid": 403,
    "CredentialsInvalid": 403,
    "TokenInvalid": 403,
    "NotFound": 404,
    "CollectionNotFound": 404,
    "JobNotFound": 404,
    "ProcessGraphNotFound": 404,
    "ProcessGraphMissing": 400,
    "ProcessGraphInvalid": 400,
    "ProcessGraphComplexity": 400,
    "ProcessUnsupported": 400,
    "ProcessParameterInvalid": 400,
    "ProcessParameterRequired": 400,
    "ProcessParameterUnsupported": 400,
    "PredefinedProcessExists": 400,
    "NoDataForUpdate": 400,
    "PropertyNotEditable": 400,
    "JobLocked": 400,
    "JobNotFinished": 400,
    "JobNotStarted": 400,
    "MethodNotAllowed": 405,
    "TooManyRequests": 429,
    "Internal": 500,
    "FeatureUnsupported": 501,
    "ServiceUnavailable": 503,
}


class OpenEOError(Exception):
    """An openEO API error: `code` from errors.json, a message for the user, the status of the code."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        *,
        links: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS.get(code, 400)
        self.links = links or []
        self.headers = headers


def error_response(
    code: str,
    message: str,
    status: int,
    links: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"id": uuid.uuid4().hex, "code": code, "message": message, "links": links or []}
    return JSONResponse(body, status_code=status, headers=headers)


def _openeo(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OpenEOError)
    return error_response(exc.code, exc.message, exc.status, exc.links, exc.headers)


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return error_response("BadRequest", "Invalid request: " + "; ".join(parts), 400)


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "BadRequest")
    if exc.status_code >= 500:
        code = "Internal"
    return error_response(code, str(exc.detail), exc.status_code, headers=getattr(exc, "headers", None))


RETRY_AFTER_S = 5


def unavailable(exc: BaseException) -> str | None:
    """What is down when `exc` says a backing service is unreachable (the database, the broker), else None."""
    import psycopg
    import psycopg_pool

    if isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout):
        return "the database"
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return "the database (its schema is missing: an operator must run `hrlc migrate`)"
    try:
        import pika.exceptions
    except ImportError:  # pragma: no cover - the platform extra has pika
        return None
    if isinstance(exc, pika.exceptions.AMQPError | ConnectionError):
        return "the message broker"
    return None


def _internal(request: Request, exc: Exception) -> JSONResponse:
    what = unavailable(exc)
    if what is not None:  # try again, not a bug: 503 with Retry-After, one log line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("503 for %s %s: %s unavailable (%s)", request.method, request.url.path, what, first)
        return error_response(
            "ServiceUnavailable",
            f"The service is temporarily unavailable: {what} cannot be reached. Please try again later.",
            503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    body_id = uuid.uuid4().hex
    log.exception("openEO API internal error %s", body_id, exc_info=exc)
    return JSONResponse(
        {"id": body_id, "code": "Internal", "message": "Internal server error.", "links": []},
        status_code=500,
    )


def install(app: FastAPI) -> None:
    """Answer every error of `app` with openEO error JSON."""
    app.add_exception_handler(OpenEOError, _openeo)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _internal)
