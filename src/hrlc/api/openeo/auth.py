"""Who is calling: HTTP Basic against hashed passwords, then signed, expiring bearer tokens.

`GET /credentials/basic` checks `Authorization: Basic` against the users file (`HRLC_USERS_FILE`, JSON or
TOML `{user: hash}`, hashes made by `hash_password`: scrypt, salted) and returns a JWT (HS256, signed with
`HRLC_TOKEN_SECRET`, `sub` = user, `exp` = now + `HRLC_TOKEN_TTL_S`). Protected endpoints take
`Authorization: Bearer basic//<token>`: no header → 401 `AuthenticationRequired`; another scheme → 403
`AuthenticationSchemeInvalid`; a bad signature, an expired token or a user no longer in the file → 403
`TokenInvalid`. The user id is only ever read from a token whose signature was verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
import tomllib
from pathlib import Path

import jwt
from fastapi import Request

from hrlc.api.openeo.errors import OpenEOError
from hrlc.settings import Settings

log = logging.getLogger(__name__)

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
BEARER_PREFIX = "basic//"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash of a password, as stored in the users file: `scrypt$n$r$p$salt$hash` (base64)."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches a `hash_password` hash (constant-time; False for malformed hashes)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(got, want)


def load_users(path: str | Path) -> dict[str, str]:
    """The `{user: hash}` table of a JSON or TOML users file."""
    path = Path(path)
    data = path.read_bytes()
    table = tomllib.loads(data.decode()) if path.suffix.lower() == ".toml" else json.loads(data)
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ValueError(f"{path}: a users file is a table {{user: password hash}}")
    return {str(k): v for k, v in table.items()}


class Authenticator:
    """Checks passwords, issues tokens and verifies them (the users file is re-read when it changes)."""

    def __init__(self, settings: Settings):
        self.users_file = Path(settings.users_file) if settings.users_file else None
        self.ttl_s = settings.token_ttl_s
        if settings.token_secret:
            self._secret = settings.token_secret
        else:
            log.warning("HRLC_TOKEN_SECRET is not set: openEO tokens are signed with a per-process secret")
            self._secret = secrets.token_urlsafe(32)
        self._lock = threading.Lock()
        self._users: dict[str, str] = {}
        self._mtime: float | None = None

    def users(self) -> dict[str, str]:
        if self.users_file is None:
            return {}
        try:
            mtime = self.users_file.stat().st_mtime
        except FileNotFoundError:
            log.error("users file %s not found", self.users_file)
            return {}
        with self._lock:
            if mtime != self._mtime:
                try:
                    self._users = load_users(self.users_file)
                except (OSError, ValueError) as e:  # mid-write, truncated, hand-edited wrongly
                    log.error("users file %s cannot be read (%s); %s", self.users_file, e,
                              "keeping the users read before" if self._mtime is not None else "nobody can log in")
                    if self._mtime is None:
                        raise OpenEOError(
                            "ServiceUnavailable", "The service cannot check credentials now; try again later.", 503
                        ) from None
                self._mtime = mtime
            return self._users

    # -- Basic → token
    def login(self, authorization: str | None) -> tuple[str, str]:
        """(user, token) for an `Authorization: Basic ...` header with valid credentials."""
        scheme, _, value = (authorization or "").partition(" ")
        if not authorization:
            raise OpenEOError(
                "AuthenticationRequired", "HTTP Basic credentials are required.", 401,
                headers={"WWW-Authenticate": 'Basic realm="openEO"'},
            )  # fmt: skip
        if scheme.lower() != "basic":
            raise OpenEOError("AuthenticationSchemeInvalid", "Use HTTP Basic authentication here.")
        try:
            user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, sep, password = "", "", ""
        stored = self.users().get(user) if sep else None
        # hash even for unknown users, so that timing does not tell which users exist
        ok = verify_password(password, stored or _DUMMY_HASH) and stored is not None
        if not ok:
            raise OpenEOError("CredentialsInvalid", "Credentials are not correct.")
        return user, self.issue(user)

    def issue(self, user: str, ttl_s: int | None = None) -> str:
        """A signed token for `user`, valid `ttl_s` seconds."""
        now = int(time.time())
        claims = {"sub": user, "iat": now, "exp": now + (self.ttl_s if ttl_s is None else ttl_s)}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    # -- bearer → user
    def user_of(self, authorization: str | None) -> str:
        """The user of an `Authorization: Bearer basic//<token>` header, verified."""
        if not authorization:
            raise OpenEOError(
                "AuthenticationRequired", "Unauthorized: this endpoint needs a bearer token.", 401,
                headers={"WWW-Authenticate": 'Bearer realm="openEO"'},
            )  # fmt: skip
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value.startswith(BEARER_PREFIX):
            raise OpenEOError(
                "AuthenticationSchemeInvalid",
                "Use 'Authorization: Bearer basic//<token>' (see /credentials/basic).",
            )
        try:
            claims = jwt.decode(
                value.removeprefix(BEARER_PREFIX), self._secret, algorithms=["HS256"],
                options={"require": ["exp", "sub"]},
            )  # fmt: skip
        except jwt.ExpiredSignatureError:
            raise OpenEOError(
                "TokenInvalid", "Authorization token has expired. Please authenticate again."
            ) from None
        except jwt.InvalidTokenError:
            raise OpenEOError(
                "TokenInvalid", "Authorization token is invalid. Please authenticate again."
            ) from None
        user = str(claims["sub"])
        if user not in self.users():
            raise OpenEOError(
                "TokenInvalid", "The user of this token is no longer known. Authenticate again."
            )
        return user


_DUMMY_HASH = hash_password("not a password", salt=b"\0" * 16)


def current_user(request: Request) -> str:
    """FastAPI dependency: the verified user of the request (401/403 openEO errors otherwise)."""
    auth: Authenticator = request.app.state.openeo.authenticator
    return auth.user_of(request.headers.get("authorization"))


def optional_user(request: Request) -> str | None:
    """FastAPI dependency: the verified user when a token is given, None without one."""
    if not request.headers.get("authorization"):
        return None
    return current_user(request)
