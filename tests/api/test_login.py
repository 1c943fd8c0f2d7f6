"""Login and operator hygiene (issue 10, findings 5 and 9): wrong passwords and login floods are throttled
before any password is hashed; a new password ends the old tokens; `hrlc users` manages the users file."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hrlc.api.openeo.app import create_openeo_app
from hrlc.api.openeo.users import load_users, verify_password
from hrlc.backends import Backends
from hrlc.settings import Settings

SECRET = "test-token-secret-of-at-least-32-bytes"


def _hrlc(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    code = "import sys; from hrlc.cli import main; sys.argv[0] = 'hrlc'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], input=stdin, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.json"
    add = ["users", "add", "--password-stdin", "--file", str(path)]
    assert _hrlc(*add, "alice", stdin="alice-password\n").returncode == 0
    assert _hrlc(*add, "ops", "--role", "operator", stdin="ops-password\n").returncode == 0
    return path


def _app(users_file: Path, **limits: float) -> TestClient:
    settings = Settings(catalog="static", store=str(users_file.parent / "lake"), users_file=str(users_file),
                        token_secret=SECRET, **limits)  # fmt: skip
    return TestClient(create_openeo_app(settings, Backends.from_settings(settings)))


def test_users_command_manages_the_file(users_file: Path) -> None:
    users = load_users(users_file)
    assert set(users) == {"alice", "ops"} and users["ops"].roles == {"user", "operator"}
    assert verify_password("alice-password", users["alice"].hash)
    assert "alice-password" not in users_file.read_text() and users_file.stat().st_mode & 0o077 == 0
    listed = _hrlc("users", "list", "--file", str(users_file))
    assert listed.returncode == 0 and listed.stdout.splitlines() == ["alice\tuser", "ops\toperator,user"]
    for args, stdin, message in [
        (["add", "alice"], "another-password\n", "exists"),
        (["add", "bad name"], "long-enough\n", "user name"),
        (["add", "carol", "--role", "root"], "long-enough\n", "unknown role"),
        (["add", "carol"], "short\n", "at least 8"),
        (["remove", "nobody"], "", "no user nobody"),
    ]:
        done = _hrlc("users", *args, "--password-stdin", "--file", str(users_file), stdin=stdin) if stdin else \
            _hrlc("users", *args, "--file", str(users_file))  # fmt: skip
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert load_users(users_file) == users  # nothing changed by the refusals
    assert _hrlc("users", "remove", "ops", "--file", str(users_file)).returncode == 0
    assert set(load_users(users_file)) == {"alice"}


def test_a_new_password_ends_the_old_tokens(users_file: Path) -> None:
    client = _app(users_file)
    token = client.get("/credentials/basic", auth=("alice", "alice-password")).json()["access_token"]
    auth = {"Authorization": f"Bearer basic//{token}"}
    assert client.get("/me", headers=auth).status_code == 200
    done = _hrlc(
        "users", "passwd", "alice", "--password-stdin", "--file", str(users_file), stdin="new-password\n"
    )
    assert done.returncode == 0, done.stderr
    r = client.get("/me", headers=auth)
    assert (
        r.status_code == 403
        and r.json()["code"] == "TokenInvalid"
        and "password changed" in r.json()["message"]
    )
    assert client.get("/credentials/basic", auth=("alice", "alice-password")).status_code == 403
    token = client.get("/credentials/basic", auth=("alice", "new-password")).json()["access_token"]
    assert client.get("/me", headers={"Authorization": f"Bearer basic//{token}"}).status_code == 200
    _hrlc("users", "remove", "alice", "--file", str(users_file))
    assert client.get("/me", headers={"Authorization": f"Bearer basic//{token}"}).status_code == 403


def test_wrong_passwords_are_throttled_per_user(users_file: Path) -> None:
    client = _app(users_file, api_login_max_failures=5, api_login_window_s=2)
    for _ in range(5):
        assert client.get("/credentials/basic", auth=("alice", "guess")).status_code == 403
    r = client.get("/credentials/basic", auth=("alice", "alice-password"))  # even the right one, for now
    assert r.status_code == 429 and r.json()["code"] == "TooManyRequests" and r.headers["Retry-After"] == "2"
    assert (
        client.get("/credentials/basic", auth=("ops", "ops-password")).status_code == 200
    )  # others unaffected
    time.sleep(2.1)
    assert client.get("/credentials/basic", auth=("alice", "alice-password")).status_code == 200


def test_a_login_flood_from_one_address_is_cut_before_hashing(users_file: Path) -> None:
    client = _app(users_file, api_login_max_attempts=10, api_login_max_failures=1000, api_login_window_s=60)
    t0 = time.perf_counter()
    statuses = [client.get("/credentials/basic", auth=(f"u{i}", "x")).status_code for i in range(60)]
    assert statuses[:10] == [403] * 10 and set(statuses[10:]) == {429}
    assert time.perf_counter() - t0 < 10  # 50 refusals without scrypt


def test_a_users_file_with_bad_roles_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"eve": {"hash": "scrypt$x", "roles": ["root"]}}))
    with pytest.raises(ValueError, match="roles of 'eve'"):
        load_users(path)
