"""OpenID Connect against a real provider running locally (tests/oidc_provider.py: authlib, client-credentials
and device grants, JWT access tokens, a rotating JWKS), with the official `openeo` client (issue 10, item 5):
both flows authenticate; a user's job is invisible to another user; expired, wrong-audience, wrong-issuer,
unsigned and HMAC tokens are refused; a rotated signing key is picked up; roles come from the token (admins
write to the STAC API, others may not)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import openeo
import pytest
import uvicorn

from api.conftest import land_cover_process
from hrlc.settings import Settings
from oidc_provider import OidcProvider

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # the provider serves plain HTTP on 127.0.0.1

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class Stack:
    root: str
    op: OidcProvider

    @property
    def url(self) -> str:
        return f"{self.root}/openeo"

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer oidc/local/{token}"}


@pytest.fixture(scope="module")
def stack(
    pgstac_db_factory: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    from hrlc.api.app import create_app

    dsn = pgstac_db_factory("oidc")
    env = {"HRLC_JOBS_DSN": dsn, "HRLC_BROKER_PREFIX": f"hrlc-test-oidc-{os.getpid()}"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    with OidcProvider.running(audience="hrlc") as op:
        op.add_client("robot", "robot-secret", roles=["operator"])
        op.add_client("admin-robot", "admin-secret", roles=["admin"])
        op.add_client("notebook", None)  # public: the device flow of a notebook
        provider = {
            "id": "local", "issuer": op.issuer, "title": "Local test provider", "audience": "hrlc",
            "default_clients": [{"id": "notebook", "grant_types": [DEVICE], "redirect_urls": []}],
        }  # fmt: skip
        lake = tmp_path_factory.mktemp("oidc-lake")
        settings = Settings(catalog=dsn, store=f"file://{lake}", token_secret="s" * 32, oidc_providers=[provider],
                            oidc_jwks_cooldown_s=0, job_sources=["/data/"], job_training=["/data/"])  # fmt: skip
        port_holder: dict[str, Any] = {}
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        port_holder["port"] = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield Stack(f"http://127.0.0.1:{port_holder['port']}", op)
        finally:
            server.should_exit = True
            thread.join(10)
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _approve_next_device(op: OidcProvider, sub: str) -> threading.Thread:
    """The user's part of the device flow: approve the next device request that reaches the provider."""
    seen = set(op.devices)

    def approve() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = [c for code, c in list(op.devices.items()) if code not in seen]
            if new:
                op.approve(new[0].user_code, sub=sub)
                return
            time.sleep(0.1)

    thread = threading.Thread(target=approve, daemon=True)
    thread.start()
    return thread


def test_the_openeo_client_authenticates_with_both_flows_and_users_are_isolated(stack: Stack) -> None:
    robot = openeo.connect(stack.url)
    assert [p["id"] for p in robot.list_auth_providers() if p["type"] == "oidc"] == ["local"]
    robot.authenticate_oidc_client_credentials(
        client_id="robot", client_secret="robot-secret", provider_id="local"
    )
    assert robot.describe_account()["user_id"] == "local:robot"
    job = robot.create_job(land_cover_process(), title="robot's job")
    job.start()
    assert job.status() in {"queued", "running", "error", "finished"}

    alice = openeo.connect(stack.url)
    approver = _approve_next_device(stack.op, "alice@example.org")
    alice.authenticate_oidc_device(client_id="notebook", provider_id="local", max_poll_time=30)
    approver.join(1)
    assert alice.describe_account()["user_id"] == "local:alice@example.org"
    assert job.job_id not in {j["id"] for j in alice.list_jobs()}
    with pytest.raises(openeo.rest.OpenEoApiError) as e:
        alice.job(job.job_id).describe()
    assert e.value.http_status_code == 404 and e.value.code == "JobNotFound"
    assert job.job_id in {j["id"] for j in robot.list_jobs()}
    job.delete()


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"aud": "another-service"}, "audience"),
        ({"iss": "http://127.0.0.1:1/evil"}, "issuer"),
        ({"kid": "no-such-key"}, "not signed by a key"),
    ],
)
def test_bad_tokens_are_refused(stack: Stack, claims: dict[str, Any], message: str) -> None:
    token = stack.op.mint("mallory", ["admin"], **claims)
    r = httpx.get(f"{stack.url}/me", headers=stack.bearer(token), timeout=10)
    assert r.status_code == 403 and r.json()["code"] == "TokenInvalid" and message in r.json()["message"]


def test_unsigned_and_hmac_tokens_are_refused(stack: Stack) -> None:
    good = jwt.decode(stack.op.mint("mallory", ["admin"]), options={"verify_signature": False})
    for token in (
        jwt.encode(good, None, algorithm="none"),
        jwt.encode(good, "any-secret-of-at-least-32-bytes-long", algorithm="HS256", headers={"kid": "x"}),
    ):
        r = httpx.get(f"{stack.url}/me", headers=stack.bearer(token), timeout=10)
        assert r.status_code == 403 and r.json()["code"] == "TokenInvalid"
    assert httpx.get(f"{stack.url}/me", headers=stack.bearer("not-a-jwt"), timeout=10).status_code == 403
    r = httpx.get(f"{stack.url}/me", headers={"Authorization": "Bearer oidc/elsewhere/x"}, timeout=10)
    assert r.status_code == 403 and "Unknown OIDC provider" in r.json()["message"]


def test_a_rotated_signing_key_is_picked_up(stack: Stack) -> None:
    before = stack.op.mint("carol", [])
    assert httpx.get(f"{stack.url}/me", headers=stack.bearer(before), timeout=10).status_code == 200
    stack.op.rotate()  # the provider signs with a key the API has not seen yet
    after = stack.op.mint("carol", [])
    assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
    r = httpx.get(f"{stack.url}/me", headers=stack.bearer(after), timeout=10)
    assert r.status_code == 200 and r.json()["user_id"] == "local:carol"


def test_roles_from_the_token_guard_stac_writes(stack: Stack) -> None:
    collection = {
        "type": "Collection", "stac_version": "1.1.0", "id": "hrlc-oidc-written", "description": "by an admin",
        "license": "CC-BY-4.0", "links": [],
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
    }  # fmt: skip
    url = f"{stack.root}/stac/collections"
    user = stack.bearer(stack.op.mint("dave", []))
    r = httpx.post(url, json=collection, headers=user, timeout=10)
    assert r.status_code == 403 and "admin role" in r.json()["description"]
    token = httpx.post(f"{stack.op.issuer}/token", data={"grant_type": "client_credentials"},
                       auth=("admin-robot", "admin-secret"), timeout=10).json()["access_token"]  # fmt: skip
    admin = stack.bearer(token)
    r = httpx.post(url, json=collection, headers=admin, timeout=10)
    assert r.status_code in (200, 201), r.text
    assert httpx.delete(f"{url}/hrlc-oidc-written", headers=admin, timeout=10).status_code in (200, 204)
