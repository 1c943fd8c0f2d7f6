"""503 where the answer is "try again" (issue 11): an unreachable database or broker is `ServiceUnavailable`
with `Retry-After` in openEO error JSON, never a 500."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from hrlc.api.openeo.app import create_openeo_app
from hrlc.api.openeo.users import hash_password
from hrlc.backends import Backends
from hrlc.settings import Settings

SECRET = "unavailable-token-secret-of-32-characters"
GRAPH = {
    "process": {
        "process_graph": {
            "a": {"process_id": "add", "arguments": {"x": 1, "y": 2}},
            "s": {
                "process_id": "save_result",
                "arguments": {"data": {"from_node": "a"}, "format": "JSON"},
                "result": True,
            },
        }
    }
}


def _client(tmp_path: Path, **settings: str) -> TestClient:
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"alice": hash_password("pw")}))
    config = Settings(
        catalog="static", store=str(tmp_path / "lake"), users_file=str(users), token_secret=SECRET, **settings
    )
    app = create_openeo_app(config, Backends.from_settings(config))
    client = TestClient(app, raise_server_exceptions=False)
    token = client.get("/credentials/basic", auth=("alice", "pw")).json()["access_token"]
    client.headers["Authorization"] = f"Bearer basic//{token}"
    return client


def _assert_503(r, what: str) -> None:  # noqa: ANN001
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "5"
    body = r.json()
    assert body["code"] == "ServiceUnavailable" and what in body["message"] and body["id"]


def test_an_unreachable_job_store_is_503(tmp_path: Path) -> None:
    client = _client(tmp_path, jobs_dsn="postgresql://postgres@127.0.0.1:1/nowhere")
    _assert_503(client.get("/jobs"), "the database")
    _assert_503(client.post("/jobs", json=GRAPH), "the database")


def test_an_unreachable_broker_is_503_and_the_job_can_be_started_later(
    tmp_path: Path, pgstac_dsn: str
) -> None:
    client = _client(
        tmp_path,
        jobs_dsn=pgstac_dsn,  # migrated by the fixture, as `hrlc migrate` does
        broker_url="amqp://guest:guest@127.0.0.1:1/%2F",
        broker_prefix="hrlc-test-unavailable",
    )
    created = client.post("/jobs", json=GRAPH)
    assert created.status_code == 201, created.text
    job = created.headers["openeo-identifier"]
    _assert_503(client.post(f"/jobs/{job}/results"), "the message broker")
    assert client.get(f"/jobs/{job}").json()["status"] == "created"  # nothing half-started: try again later
