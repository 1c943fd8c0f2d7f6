"""The STAC API over a database that drops its connections (a PostgreSQL restart, issue 11): every answer is
a success or a 503 `ServiceUnavailable` with `Retry-After`, never a 500, and it serves again afterwards."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import psycopg

from hrlc.catalog.pgstac import collection_ids
from hrlc.settings import Settings


def test_dropped_database_connections_are_503_or_recovered_never_500(
    pgstac_db_factory: Callable[[str], str], serve_api: Callable[..., str]
) -> None:
    dsn = pgstac_db_factory("outage")
    base = serve_api(Settings(catalog=dsn, stac_public_collections=collection_ids())) + "/stac"
    assert httpx.post(f"{base}/search", json={"limit": 1}).status_code == 200
    statuses: list[int] = []
    for _ in range(3):
        with psycopg.connect(dsn, autocommit=True) as conn:  # what a restart does to the API's pool
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where datname = current_database() and pid <> pg_backend_pid()"
            )
        for _ in range(4):
            r = httpx.post(f"{base}/search", json={"limit": 1})
            statuses.append(r.status_code)
            if r.status_code == 503:
                body: dict[str, Any] = r.json()
                assert body["code"] == "ServiceUnavailable" and r.headers["retry-after"] == "5", json.dumps(
                    body
                )
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[-1] == 200  # and it serves again


def test_readiness_names_what_is_down(pgstac_dsn: str, serve_api: Callable[..., str]) -> None:
    up = serve_api(Settings(catalog=pgstac_dsn))
    assert httpx.get(f"{up}/health/live").json() == {"status": "ok"}
    ready = httpx.get(f"{up}/health/ready")
    assert ready.status_code == 200 and set(ready.json()["checks"].values()) == {"ok"}, ready.text
    no_broker = serve_api(Settings(catalog=pgstac_dsn, broker_url="amqp://guest:guest@127.0.0.1:1/%2F"))
    r = httpx.get(f"{no_broker}/health/ready")
    assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
    assert r.json()["down"] == ["broker"] and r.json()["checks"]["job store"] == "ok"
