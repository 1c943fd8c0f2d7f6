"""Authentication: Basic → signed expiring token; missing, expired, tampered and foreign tokens refused."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest

from api.conftest import SECRET, USERS, Server
from hrlc.api.openeo.auth import hash_password, load_users, verify_password
from hrlc.api.openeo.users import User


def test_hash_password_roundtrip(tmp_path) -> None:  # noqa: ANN001
    h = hash_password("s3cret")
    assert h.startswith("scrypt$") and "s3cret" not in h
    assert verify_password("s3cret", h)
    assert not verify_password("S3cret", h)
    assert not verify_password("s3cret", "garbage")
    assert hash_password("x") != hash_password("x")  # salted
    toml = tmp_path / "users.toml"
    toml.write_text(f'carol = "{h}"\n')
    assert load_users(toml) == {"carol": User(h)}


def test_basic_login_gives_a_signed_expiring_token(server: Server) -> None:
    token = server.token("alice")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert 0 < claims["exp"] - time.time() <= server.settings.token_ttl_s
    me = server.client(token).get("/me")
    assert me.status_code == 200 and me.json()["user_id"] == "alice"


@pytest.mark.parametrize(
    ("auth", "status", "code"),
    [
        (None, 401, "AuthenticationRequired"),
        (("alice", "wrong"), 403, "CredentialsInvalid"),
        (("mallory", "alice-password"), 403, "CredentialsInvalid"),
    ],
)
def test_bad_basic_credentials(server: Server, auth: tuple[str, str] | None, status: int, code: str) -> None:
    r = httpx.get(f"{server.url}/credentials/basic", auth=auth)
    assert (r.status_code, r.json()["code"]) == (status, code)


def _tamper(token: str, user: str) -> str:
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = user
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


def _cases(server: Server) -> dict[str, tuple[dict[str, str], int, str]]:
    good = server.token("alice")
    expired = jwt.encode({"sub": "alice", "exp": int(time.time()) - 10}, SECRET, algorithm="HS256")
    other_key = jwt.encode(
        {"sub": "alice", "exp": int(time.time()) + 60},
        "another-secret-of-32-bytes-or-more!",
        algorithm="HS256",
    )
    unsigned = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, None, algorithm="none")
    ghost = jwt.encode({"sub": "ghost", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    return {
        "missing": ({}, 401, "AuthenticationRequired"),
        "expired": ({"Authorization": f"Bearer basic//{expired}"}, 403, "TokenInvalid"),
        "tampered": ({"Authorization": f"Bearer basic//{_tamper(good, 'bob')}"}, 403, "TokenInvalid"),
        "other key": ({"Authorization": f"Bearer basic//{other_key}"}, 403, "TokenInvalid"),
        "unsigned": ({"Authorization": f"Bearer basic//{unsigned}"}, 403, "TokenInvalid"),
        "unknown user": ({"Authorization": f"Bearer basic//{ghost}"}, 403, "TokenInvalid"),
        "plain user id": ({"Authorization": "Bearer basic//alice"}, 403, "TokenInvalid"),
        "no prefix": ({"Authorization": f"Bearer {good}"}, 403, "AuthenticationSchemeInvalid"),
        "basic scheme": (
            {"Authorization": "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ="},
            403,
            "AuthenticationSchemeInvalid",
        ),
    }


@pytest.mark.parametrize("path", ["/me", "/jobs", "/process_graphs"])
def test_protected_endpoints_refuse_bad_tokens(server: Server, path: str) -> None:
    for name, (headers, status, code) in _cases(server).items():
        r = httpx.get(f"{server.url}{path}", headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code), name
        assert r.json()["message"]


def test_the_users_in_the_fixture_can_log_in(server: Server) -> None:
    assert set(USERS) == {"alice", "bob"}
    for user in USERS:
        assert server.client(server.token(user)).get("/me").json()["user_id"] == user
