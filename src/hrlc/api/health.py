"""Health of `hrlc serve` for probes and load balancers: `/health/live` (the process answers) and
`/health/ready` (the services it needs answer: the job store, the catalogue database, the broker).

Readiness is 200 with each check `ok`, or 503 `ServiceUnavailable` naming what is down, so an orchestrator stops
routing requests to an instance that can only answer 503 (and a person sees why). Each check has a short
timeout; nothing is cached, so a probe every few seconds sees a recovery at once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hrlc.settings import Settings, pg_dsn

TIMEOUT_S = 3
router = APIRouter()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _database(dsn: str) -> str:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=TIMEOUT_S, application_name="hrlc-health") as conn:
            conn.execute("select 1")
        return "ok"
    except psycopg.Error as e:
        return f"down: {_first_line(e)}"


def _broker(url: str) -> str:
    import pika

    params = pika.URLParameters(url)
    params.socket_timeout = params.blocked_connection_timeout = TIMEOUT_S
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
        return "ok"
    except Exception as e:  # noqa: BLE001 - pika raises many kinds for an unreachable broker
        return f"down: {_first_line(e) or type(e).__name__}"


def readiness(settings: Settings) -> dict[str, str]:
    """Each service the API needs, `ok` or `down: <why>`."""
    checks = {"job store": _database(settings.jobs_dsn), "broker": _broker(settings.broker_url)}
    catalog = pg_dsn(settings.catalog)
    if catalog and catalog != settings.jobs_dsn:
        checks["catalogue"] = _database(catalog)
    return checks


@router.get("/health/live", include_in_schema=False)
def live() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/health/ready", include_in_schema=False)
def ready(request: Request) -> JSONResponse:
    checks = readiness(request.app.state.hrlc_settings)
    down = sorted(name for name, state in checks.items() if state != "ok")
    if down:
        return JSONResponse(
            {"status": "unavailable", "code": "ServiceUnavailable", "down": down, "checks": checks},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ok", "checks": checks})
