"""Who is calling: HTTP Basic against hashed passwords, then signed, expiring bearer tokens.

`GET /credentials/basic` checks `Authorization: Basic` against the users file (`HRLC_USERS_FILE`, see
`hrlc.api.openeo.users`: salted scrypt hashes and roles) and returns a JWT (HS256, signed with
`HRLC_TOKEN_SECRET`, `sub` = user, `exp` = now + `HRLC_TOKEN_TTL_S`, `pwv` = the password's version).
Protected endpoints take `Authorization: Bearer basic//<token>`: no header → 401 `AuthenticationRequired`;
another scheme → 403 `AuthenticationSchemeInvalid`; a bad signature, an expired token, a user no longer in the
file or a token older than the user's password → 403 `TokenInvalid`. The user id is only ever read from a
token whose signature was verified. `Bearer oidc/<provider>/<access token>` is checked by `oidc.OidcVerifier`.

Logins are throttled (`LoginThrottle`): after `HRLC_API_LOGIN_MAX_FAILURES` wrong passwords for a user, or
`HRLC_API_LOGIN_MAX_ATTEMPTS` attempts from one client address, within `HRLC_API_LOGIN_WINDOW_S`, further
attempts are 429 `TooManyRequests` (with `Retry-After`) before any password is hashed. Counts are per API
process.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import threading
import time
from collections import defaultdict, deque
from pathlib import Path

import jwt
from fastapi import Request

from hrlc.api.openeo.errors import OpenEOError
from hrlc.api.openeo.oidc import OidcVerifier
from hrlc.api.openeo.users import User, hash_password, load_users, verify_password
from hrlc.settings import Settings

__all__ = ["Authenticator", "LoginThrottle", "current_user", "hash_password", "load_users", "verify_password"]

log = logging.getLogger(__name__)

BEARER_PREFIX = "basic//"


class LoginThrottle:
    """Sliding-window counts of login failures per user and of attempts per client address."""

    def __init__(self, max_failures: int, max_attempts: int, window_s: float):
        self.max_failures = max_failures
        self.max_attempts = max_attempts
        self.window_s = window_s
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _count(self, key: str, now: float) -> int:
        events = self._events[key]
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if not events:
            del self._events[key]  # nothing kept for keys that went quiet
            return 0
        return len(events)

    def admit(self, user: str, address: str) -> None:
        """Count an attempt of `address`; 429 `TooManyRequests` if the user or the address is over its limit."""
        now = time.monotonic()
        with self._lock:
            over = self._count(f"user:{user}", now) >= self.max_failures
            over = over or self._count(f"addr:{address}", now) >= self.max_attempts
            if not over:
                self._events[f"addr:{address}"].append(now)
        if over:
            retry = int(self.window_s) or 1
            raise OpenEOError(
                "TooManyRequests",
                f"Too many login attempts; try again in {retry} s.",
                429,
                headers={"Retry-After": str(retry)},
            )

    def failed(self, user: str) -> None:
        with self._lock:
            self._events[f"user:{user}"].append(time.monotonic())

    def succeeded(self, user: str) -> None:
        with self._lock:
            self._events.pop(f"user:{user}", None)


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
        self._users: dict[str, User] = {}
        self._mtime: float | None = None
        self.throttle = LoginThrottle(
            settings.api_login_max_failures, settings.api_login_max_attempts, settings.api_login_window_s
        )
        self.oidc = OidcVerifier(settings.oidc_providers, settings.oidc_jwks_cooldown_s)
        self._oidc_roles: dict[str, frozenset[str]] = {}  # from the last verified token of each OIDC user

    def users(self) -> dict[str, User]:
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
                    log.error(
                        "users file %s cannot be read (%s); %s",
                        self.users_file,
                        e,
                        "keeping the users read before" if self._mtime is not None else "nobody can log in",
                    )
                    if self._mtime is None:
                        raise OpenEOError(
                            "ServiceUnavailable",
                            "The service cannot check credentials now; try again later.",
                            503,
                        ) from None
                self._mtime = mtime
            return self._users

    # -- Basic → token
    def roles(self, user: str) -> frozenset[str]:
        """The roles of a user (none for an unknown one); an OIDC user's from their last verified token."""
        if user in self._oidc_roles:
            return self._oidc_roles[user]
        record = self.users().get(user)
        return record.roles if record else frozenset()

    def login(self, authorization: str | None, address: str = "") -> tuple[str, str]:
        """(user, token) for an `Authorization: Basic ...` header with valid credentials, from `address`."""
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
        self.throttle.admit(user, address)  # before any hashing: a flood costs no CPU
        stored = self.users().get(user) if sep else None
        # hash even for unknown users, so that timing does not tell which users exist
        ok = verify_password(password, stored.hash if stored else _DUMMY_HASH) and stored is not None
        if not ok:
            self.throttle.failed(user)
            raise OpenEOError("CredentialsInvalid", "Credentials are not correct.")
        self.throttle.succeeded(user)
        return user, self.issue(user)

    def issue(self, user: str, ttl_s: int | None = None) -> str:
        """A signed token for `user`, valid `ttl_s` seconds, bound to the user's current password."""
        now = int(time.time())
        record = self.users().get(user)
        claims = {
            "sub": user,
            "iat": now,
            "exp": now + (self.ttl_s if ttl_s is None else ttl_s),
            "pwv": record.password_version if record else "",
        }
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
        if scheme.lower() == "bearer" and value.startswith("oidc/"):
            identity = self.oidc.verify(value)
            self._oidc_roles[identity.user] = identity.roles
            return identity.user
        if scheme.lower() != "bearer" or not value.startswith(BEARER_PREFIX):
            raise OpenEOError(
                "AuthenticationSchemeInvalid",
                "Use 'Authorization: Bearer basic//<token>' (see /credentials/basic) or "
                "'Bearer oidc/<provider>/<access token>' (see /credentials/oidc).",
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
        record = self.users().get(user)
        if record is None:
            raise OpenEOError(
                "TokenInvalid", "The user of this token is no longer known. Authenticate again."
            )
        if claims.get("pwv") != record.password_version:
            raise OpenEOError(
                "TokenInvalid", "The password changed after this token was issued. Authenticate again."
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
