"""A real OpenID Connect provider for the tests, built with authlib's OAuth 2.0 authorization server (Flask) and
served over HTTP on 127.0.0.1: discovery, a JWKS with key rotation, the client-credentials grant and the
device-authorization grant (RFC 8628), JWT access tokens (RFC 9068 shape: `typ` at+jwt, `kid`, iss, aud, sub,
exp, roles) signed with RS256.

    with OidcProvider.running(audience="hrlc") as op:
        op.add_client("robot", "robot-secret", roles=["operator"])   # client credentials: sub = client id
        op.issuer                                                     # http://127.0.0.1:PORT
        op.rotate()                                                   # a new signing key, published with the old
        op.approve(user_code, sub="alice@example.org", roles=[])      # the user's step of the device flow

Tokens are minted with PyJWT so that the header carries the key id (authlib's own generator leaves it out).
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify
from werkzeug.serving import make_server

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class Client(ClientMixin):
    client_id: str
    secret: str | None
    roles: list[str] = field(default_factory=list)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return scope or "openid"

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret is not None and secrets.compare_digest(client_secret, self.secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.secret is None:  # a public client (device flow from a notebook)
            return method == "none"
        return method in {"client_secret_basic", "client_secret_post"}

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return (
            grant_type == DEVICE_GRANT
            if self.secret is None
            else grant_type in {"client_credentials", DEVICE_GRANT}
        )


@dataclass
class User:
    sub: str
    roles: list[str]

    def get_user_id(self) -> str:
        return self.sub


@dataclass
class DeviceCredential:
    client_id: str
    scope: str
    device_code: str
    user_code: str
    expires_at: float
    user: User | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_user_code(self) -> str:
        return self.user_code

    def is_expired(self) -> bool:
        return time.time() > self.expires_at


class OidcProvider:
    def __init__(self, audience: str, token_ttl_s: int = 300):
        self.audience = audience
        self.token_ttl_s = token_ttl_s
        self.clients: dict[str, Client] = {}
        self.devices: dict[str, DeviceCredential] = {}
        self.keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self.issuer = ""
        self.rotate()
        self.app = self._app()

    # ------------------------------------------------------------------------------------------ test controls
    def add_client(self, client_id: str, secret: str | None, roles: list[str] | None = None) -> None:
        self.clients[client_id] = Client(client_id, secret, roles or [])

    def rotate(self, keep_old: bool = True) -> str:
        """A new signing key (the current one from now on); the old ones stay in the JWKS unless not `keep_old`."""
        kid = uuid.uuid4().hex[:12]
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys = [*(self.keys if keep_old else []), (kid, key)]
        return kid

    def approve(self, user_code: str, sub: str, roles: list[str] | None = None) -> None:
        for credential in self.devices.values():
            if credential.user_code == user_code:
                credential.user = User(sub, roles or [])
                return
        raise KeyError(user_code)

    def mint(self, sub: str, roles: list[str], **overrides: Any) -> str:
        """An access token as the token endpoint makes it; `overrides` replace claims (or header: `kid`, `alg`)."""
        kid, key = self.keys[-1]
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "aud": self.audience, "sub": sub, "iat": now,
                                  "exp": now + self.token_ttl_s, "jti": uuid.uuid4().hex, "roles": roles}  # fmt: skip
        header = {"kid": overrides.pop("kid", kid), "typ": "at+jwt"}
        claims |= overrides
        return jwt.encode(claims, key, algorithm="RS256", headers=header)

    # ------------------------------------------------------------------------------------------ the server
    def _app(self) -> Flask:
        app = Flask("oidc-provider")
        app.config["OAUTH2_ERROR_URIS"] = []
        provider = self
        server = AuthorizationServer(
            app, query_client=self.clients.get, save_token=lambda token, request: None
        )

        def generate_token(
            client: Client, grant_type: str, user: User | None = None, scope: str | None = None, **_: Any
        ) -> dict[str, Any]:
            sub, roles = (user.sub, user.roles) if user else (client.client_id, client.roles)
            token = provider.mint(sub, roles, client_id=client.client_id, scope=scope or "openid")
            return {"token_type": "Bearer", "access_token": token, "expires_in": provider.token_ttl_s,
                    "scope": scope or "openid"}  # fmt: skip

        server.register_token_generator("default", generate_token)

        class ClientCredentials(ClientCredentialsGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = [
                "client_secret_basic",
                "client_secret_post",
            ]  # openeo posts the secret

        server.register_grant(ClientCredentials)

        class DeviceGrant(DeviceCodeGrant):
            def query_device_credential(self, device_code: str) -> DeviceCredential | None:
                return provider.devices.get(device_code)

            def query_user_grant(self, user_code: str) -> tuple[User, bool] | None:
                for credential in provider.devices.values():
                    if credential.user_code == user_code and credential.user is not None:
                        return credential.user, True
                return None

            def should_slow_down(self, credential: DeviceCredential) -> bool:
                return False

        class DeviceEndpoint(DeviceAuthorizationEndpoint):
            INTERVAL = 1  # seconds between the client's polls (5 by default)

            def get_verification_uri(self) -> str:
                return f"{provider.issuer}/device"

            def save_device_credential(self, client_id: str, scope: str, data: dict[str, Any]) -> None:
                provider.devices[data["device_code"]] = DeviceCredential(
                    client_id, scope, data["device_code"], data["user_code"], time.time() + data["expires_in"]
                )

        server.register_grant(DeviceGrant)
        server.register_endpoint(DeviceEndpoint)

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            return jsonify({
                "issuer": provider.issuer,
                "jwks_uri": f"{provider.issuer}/jwks",
                "token_endpoint": f"{provider.issuer}/token",
                "device_authorization_endpoint": f"{provider.issuer}/device_authorization",
                "authorization_endpoint": f"{provider.issuer}/authorize",
                "grant_types_supported": ["client_credentials", DEVICE_GRANT],
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            })  # fmt: skip

        @app.get("/jwks")
        def jwks() -> Any:
            keys = []
            for kid, key in provider.keys:
                public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
                keys.append({**public, "kid": kid, "use": "sig", "alg": "RS256"})
            return jsonify({"keys": keys})

        @app.post("/token")
        def token() -> Any:
            return server.create_token_response()

        @app.post("/device_authorization")
        def device_authorization() -> Any:
            return server.create_endpoint_response(DeviceEndpoint.ENDPOINT_NAME)

        return app

    @classmethod
    @contextmanager
    def running(cls, audience: str, token_ttl_s: int = 300) -> Iterator[OidcProvider]:
        provider = cls(audience, token_ttl_s)
        http = make_server("127.0.0.1", 0, provider.app, threaded=True)
        provider.issuer = f"http://127.0.0.1:{http.server_port}"
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        try:
            yield provider
        finally:
            http.shutdown()
            thread.join(10)
