"""No request takes `hrlc serve` down (issue 10, findings 1, 7 and 8): a CQL2 filter nested deep enough to crash
the cql2 parser, huge and deeply nested bodies, and malformed STAC parameters are refused in the API's own
error format before any parser sees them; and a worker process that dies anyway is replaced by uvicorn's
supervisor while the other one serves. A real `hrlc serve` (two worker processes) in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hrlc.api.limits import LimitExceeded, Limits, check_filter, json_depth, parenthesis_depth
from hrlc.api.openeo.auth import hash_password
from hrlc.catalog.pgstac import collection_ids


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT
    proc: subprocess.Popen[bytes]

    def workers(self) -> list[int]:
        """The pids of uvicorn's worker processes (children started by multiprocessing's spawn, not its
        resource tracker)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        workers = []
        for pid in children:
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    workers.append(int(pid))
            except FileNotFoundError:  # gone meanwhile
                continue
        return workers


@pytest.fixture(scope="module")
def served(pgstac_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    users = tmp_path_factory.mktemp("users") / "users.json"
    users.write_text(json.dumps({"alice": hash_password("alice-password")}))
    env = {
        **{k: v for k, v in os.environ.items() if k != "HRLC_TOKEN_SECRET"},
        "HRLC_USERS_FILE": str(users),
        "HRLC_STORE": str(tmp_path_factory.mktemp("lake")),
        "HRLC_CATALOG": pgstac_dsn,
        "HRLC_API_WORKERS": "2",
        "HRLC_API_MAX_BODY_BYTES": str(1024 * 1024),
        "HRLC_STAC_PUBLIC_COLLECTIONS": json.dumps(collection_ids()),  # anonymous STAC reads, as before
    }
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hrlc.cli", "serve", "--port", str(port), "--log-level", "info"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(f"http://127.0.0.1:{port}", proc)
    try:
        deadline = time.monotonic() + 90
        while len(_ready_workers(served)) < 2:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"hrlc serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield served
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _ready_workers(served: Served) -> list[int]:
    try:
        if httpx.get(f"{served.url}/stac/", timeout=5).status_code != 200:
            return []
    except httpx.TransportError:
        return []
    return served.workers()


def _alive(served: Served) -> None:
    for _ in range(6):
        assert httpx.get(f"{served.url}/stac/", timeout=10).status_code == 200
        assert httpx.get(f"{served.url}/openeo/", timeout=10).status_code == 200


def _nested(depth: int) -> str:
    return "(" * depth + "id='x'" + ")" * depth


@pytest.mark.parametrize("path", ["/stac/search", "/stac/collections"])
def test_a_filter_nested_deep_enough_to_crash_cql2_is_refused(served: Served, path: str) -> None:
    r = httpx.get(
        f"{served.url}{path}", params={"filter": _nested(1600), "filter-lang": "cql2-text"}, timeout=30
    )
    assert r.status_code == 400
    assert r.json()["code"] == "InvalidQueryParameter"
    assert "parentheses nested 1600 deep" in r.json()["description"]
    # a sane filter still works, and both worker processes are still the ones that started
    r = httpx.get(
        f"{served.url}{path}", params={"filter": _nested(3), "filter-lang": "cql2-text"}, timeout=30
    )
    assert r.status_code == 200, r.text
    _alive(served)


def test_deep_cql2_json_and_free_text_are_refused(served: Served) -> None:
    deep: object = {"op": "=", "args": [{"property": "id"}, "x"]}
    for _ in range(150):
        deep = {"op": "not", "args": [deep]}
    r = httpx.post(f"{served.url}/stac/search", json={"filter": deep, "filter-lang": "cql2-json"}, timeout=30)
    assert r.status_code == 400 and r.json()["code"] == "BadRequest"
    r = httpx.get(f"{served.url}/stac/collections", params={"q": _nested(400)}, timeout=30)
    assert r.status_code == 400 and r.json()["code"] == "InvalidQueryParameter"
    r = httpx.get(f"{served.url}/stac/search", params={"filter": "id = '" + "x" * 30_000 + "'"}, timeout=30)
    assert r.status_code == 400 and "characters long" in r.json()["description"]
    _alive(served)


def test_bodies_over_the_limit_are_refused_unread(served: Served) -> None:
    big = b'{"title": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = httpx.post(
        f"{served.url}/openeo/jobs", content=big, headers={"content-type": "application/json"}, timeout=30
    )
    assert r.status_code == 413
    body = r.json()
    assert body["code"] == "PayloadTooLarge" and {"id", "message"} <= set(body)  # openEO error JSON

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts the streamed bytes
        yield b'{"title": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    r = httpx.post(f"{served.url}/stac/search", content=chunks(), timeout=30)
    assert r.status_code == 413 and r.json()["code"] == "PayloadTooLarge"  # STAC error JSON
    _alive(served)


def test_a_graph_argument_nested_5000_arrays_deep_is_refused_at_once(served: Served) -> None:
    nested = "[" * 5000 + "1" + "]" * 5000
    graph = '{"process": {"process_graph": {"a": {"process_id": "add", "arguments": {"x": ' + nested
    graph += ', "y": 1}, "result": true}}}}'
    t0 = time.monotonic()
    r = httpx.post(
        f"{served.url}/openeo/result", content=graph, headers={"content-type": "application/json"}, timeout=60
    )
    assert r.status_code == 400 and r.json()["code"] == "BadRequest"
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize(
    ("params", "method", "body"),
    [
        ({"token": "next:garbage"}, "GET", None),  # a tampered paging token
        ({"query": "notjson"}, "GET", None),  # the query extension's JSON
        ({"q": "(("}, "GET", None),  # free text pgstac cannot parse
        (None, "POST", {"filter": {"op": "bogus"}, "filter-lang": "cql2-json"}),  # malformed CQL2 JSON
    ],
)
def test_malformed_stac_parameters_are_400_json(
    served: Served, params: dict[str, str] | None, method: str, body: dict[str, object] | None
) -> None:
    path = "/stac/collections" if params and "q" in params else "/stac/search"
    r = httpx.request(method, f"{served.url}{path}", params=params, json=body, timeout=30)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["code"] and r.json()["description"]


def test_a_token_of_one_worker_process_is_good_for_the_other(served: Served) -> None:
    """Without HRLC_TOKEN_SECRET, `hrlc serve` shares one random secret with its worker processes (each of its
    own would refuse about half the requests)."""
    login = httpx.get(f"{served.url}/openeo/credentials/basic", auth=("alice", "alice-password"), timeout=10)
    assert login.status_code == 200, login.text
    auth = {"Authorization": f"Bearer basic//{login.json()['access_token']}"}
    for _ in range(12):  # a new connection each time: they land on either process
        r = httpx.get(f"{served.url}/openeo/me", headers=auth, timeout=10)
        assert r.status_code == 200 and r.json()["user_id"] == "alice", r.text


def test_a_dead_worker_costs_no_request_and_is_replaced(served: Served) -> None:
    before = served.workers()
    assert len(before) == 2
    os.kill(before[0], signal.SIGKILL)  # as a segfault would
    _alive(served)  # the other worker serves meanwhile
    deadline = time.monotonic() + 30
    while True:
        now = served.workers()
        if len(now) == 2 and before[0] not in now:
            break
        assert time.monotonic() < deadline, f"no replacement for worker {before[0]}: {now}"
        time.sleep(0.3)
    deadline = time.monotonic() + 30
    while len(_ready_workers(served)) < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
    _alive(served)


# ---------------------------------------------------------------------------------------- pure functions
def test_depths() -> None:
    assert parenthesis_depth("((a) and (b))") == 2
    assert parenthesis_depth("name = '((((' and (x = 1)") == 1  # literals do not count
    assert parenthesis_depth("name = 'it''s (' and x = 1") == 0
    assert json_depth(1) == 0 and json_depth([]) == 1 and json_depth({"a": [[{}]]}) == 4
    assert json_depth(json.loads("[" * 900 + "]" * 900)) == 900


def test_check_filter_limits() -> None:
    limits = Limits(max_filter_chars=100, max_filter_depth=3, max_json_depth=5)
    check_filter("filter", "((a = 1))", limits)
    with pytest.raises(LimitExceeded, match="parentheses nested 4 deep"):
        check_filter("filter", "((((a = 1))))", limits)
    with pytest.raises(LimitExceeded, match="JSON nesting 6 deep"):
        check_filter("filter", json.dumps([[[[[[1]]]]]]), limits)
    with pytest.raises(LimitExceeded, match="101 characters"):
        check_filter("q", "x" * 101, limits)
    check_filter("filter", {"op": "and", "args": []}, limits)  # parsed JSON: the body's depth limit applies


def test_a_json_body_that_is_not_an_object_is_400(served: Served) -> None:
    """stac-pydantic's search model assumed an object and raised AttributeError (a 500) on `[null, null]`."""
    for path in ("/stac/search", "/openeo/jobs", "/openeo/validation"):
        for body in ([None, None], None, 3, "x"):
            r = httpx.post(f"{served.url}{path}", content=json.dumps(body), timeout=10,
                           headers={"content-type": "application/json"})  # fmt: skip
            assert r.status_code == 400 and r.headers["content-type"] == "application/json", (
                path,
                body,
                r.text,
            )
    _alive(served)


def test_a_body_that_is_not_json_is_refused_in_each_apis_format(served: Served) -> None:
    """schemathesis found it: a STAC search posted as text/plain reached stac-pydantic as bytes (500)."""
    body = '{"collections": [], "limit": 1}'
    r = httpx.post(f"{served.url}/stac/search", content=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["code"] == "UnsupportedMediaType", r.text
    r = httpx.post(f"{served.url}/openeo/result", content=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and r.json()["code"] == "ContentTypeInvalid", r.text
    assert httpx.post(f"{served.url}/stac/search", json={"limit": 1}).status_code == 200
