"""A job submitted through the openEO API makes no worker open a URL or path the deployment does not allow
(issue 10, finding 3): sources must lie under HRLC_JOB_SOURCES, training inputs under HRLC_JOB_TRAINING or the
user's own lake prefix (or be a training-set selection); refusals never tell whether a server-side path exists.
A loopback listener records every request that reaches it: none must."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from api.conftest import Server, land_cover_process
from hrlc.jobs.allowlist import InputAllowlist, InputRefused, normal_form


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Record(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            hits.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"type": "Catalog", "id": "internal", "links": []}')

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()


def _refused(r: Any) -> str:
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "ProcessParameterInvalid", r.json()
    return str(r.json()["message"])


def test_no_source_or_training_outside_the_allowlist_is_ever_opened(
    server: Server, tokens: dict[str, str], listener: tuple[str, list[str]]
) -> None:
    url, hits = listener
    attempts = [
        {"source": f"{url}/internal/admin?token=x"},
        {"source": f"{url}/stac"},
        {"training": f"/vsicurl/{url}/samples.gpkg"},
        {"training": f"{url}/samples.gpkg"},
        {"source": f"/vsicurl/{url}/catalog.json"},
        {"source": "/data/../etc/passwd"},  # climbs out of the allowed /data/
        {"training": "/data/../root/.ssh/id_rsa"},
        {"source": "file:///etc/hostname"},
        {"source": "data/catalog.json"},  # relative: the server's working directory
    ]
    with server.client(tokens["alice"]) as c:
        before = c.get("/jobs").json()["jobs"]
        for overrides in attempts:
            message = _refused(c.post("/jobs", json={"process": land_cover_process(**overrides)}))
            name = next(iter(overrides))
            assert f"{name} " in message and "allowed" in message
        assert c.get("/jobs").json()["jobs"] == before  # nothing stored
    assert hits == []


def test_refusals_do_not_tell_whether_a_path_exists(server: Server, tokens: dict[str, str]) -> None:
    with server.client(tokens["alice"]) as c:
        exists = _refused(c.post("/jobs", json={"process": land_cover_process(training="/etc/shadow")}))
        missing = _refused(
            c.post("/jobs", json={"process": land_cover_process(training="/etc/no-such-file")})
        )
    assert exists.replace("/etc/shadow", "X") == missing.replace("/etc/no-such-file", "X")


def test_allowed_inputs_pass(server: Server, tokens: dict[str, str]) -> None:
    own = f"{server.settings.store.removeprefix('file://').rstrip('/')}/users/alice/samples.gpkg"
    selection = {"area": "europe", "year": 2021}
    with server.client(tokens["alice"]) as c:
        for overrides in [
            {},
            {"training": own},
            {"training": selection},
            {"source": "/data/sub/catalog.json"},
        ]:
            r = c.post("/jobs", json={"process": land_cover_process(**overrides)})
            assert r.status_code == 201, (overrides, r.text)
            c.delete(f"/jobs/{r.headers['OpenEO-Identifier']}")
        # another user's prefix is not alice's
        other = own.replace("/users/alice/", "/users/bob/")
        _refused(c.post("/jobs", json={"process": land_cover_process(training=other)}))


# ---------------------------------------------------------------------------------------- pure functions
def test_normal_form() -> None:
    assert (
        normal_form("https://Earth-Search.aws.element84.com/v1/")
        == "https://earth-search.aws.element84.com/v1"
    )
    assert normal_form("file:///data/./x/catalog.json") == "/data/x/catalog.json"
    assert normal_form("/data//x") == "/data/x"
    for bad in ["/data/../etc", "/vsicurl/http://x", "http://u:p@host/x", "http://host/x?q=1", "x/y", "ftp://h/x",
                "/data/x\x00", "http:///nohost", "C:\\data\\x"]:  # fmt: skip
        assert normal_form(bad) is None, bad


def test_allowlist_prefixes_match_whole_segments() -> None:
    allow = InputAllowlist(
        ("https://api.example.org/stac", "/data/sources"), ("/data/training",), "s3://lake/root"
    )
    allow.check_source("https://api.example.org/stac")
    allow.check_source("https://API.example.org/stac/")
    allow.check_source("/data/sources/s2/catalog.json")
    for bad in ["https://api.example.org/stac-evil", "https://api.example.org.evil.net/stac", "/data/sources-x/c.json",
                "http://api.example.org/stac"]:  # fmt: skip
        with pytest.raises(InputRefused):
            allow.check_source(bad)
    allow.check_training("s3://lake/root/users/alice/points.gpkg", "alice")
    allow.check_training({"area": "x"}, "alice")
    with pytest.raises(InputRefused):
        allow.check_training("s3://lake/root/users/bob/points.gpkg", "alice")
    with pytest.raises(InputRefused):
        allow.check_training("s3://lake/root/users/alice/../bob/points.gpkg", "alice")
