"""OpenID Connect (spec §3.1.3): access tokens of the configured providers (`HRLC_OIDC_PROVIDERS`), validated
locally — signature against the provider's JWKS (fetched through its discovery document, cached, fetched again
when a token names a key id it has not seen: key rotation), issuer, audience, expiry — never by asking the
provider per request. The openEO form is `Authorization: Bearer oidc/<provider id>/<access token>`.

A token's user is `<provider id>:<sub>` (never a name of the users file, which allows no `:`), its roles the
known ones (`operator`, `admin`) in the provider's `roles_claim` (a list or a space-separated string), plus
`user`. Tokens must be signed with an asymmetric algorithm (RS*, PS*, ES*, EdDSA): `none` and HMAC are refused.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from hrlc.api.openeo.errors import OpenEOError
from hrlc.api.openeo.users import ROLES
from hrlc.settings import OidcProvider

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


@dataclass(frozen=True)
class Identity:
    user: str
    roles: frozenset[str]


def _invalid(message: str) -> OpenEOError:
    return OpenEOError("TokenInvalid", f"{message} Please authenticate again.")


class OidcVerifier:
    """Validates access tokens of the configured providers; one JWKS client (with its key cache) per provider."""

    def __init__(self, providers: list[OidcProvider], jwks_cooldown_s: float = 30.0):
        self.providers = {p.id: p for p in providers}
        self.jwks_cooldown_s = jwks_cooldown_s
        self._jwks: dict[str, jwt.PyJWKClient] = {}
        self._lock = threading.Lock()

    def describe(self) -> list[dict[str, Any]]:
        """The providers as `GET /credentials/oidc` lists them."""
        out = []
        for p in self.providers.values():
            entry: dict[str, Any] = {
                "id": p.id,
                "issuer": p.issuer,
                "title": p.title or p.id,
                "scopes": p.scopes,
            }
            if p.default_clients:
                entry["default_clients"] = p.default_clients
            out.append(entry)
        return out

    def _jwks_client(self, provider: OidcProvider) -> jwt.PyJWKClient:
        with self._lock:
            client = self._jwks.get(provider.id)
            if client is None:
                url = f"{provider.issuer.rstrip('/')}/.well-known/openid-configuration"
                try:
                    response = httpx.get(url, timeout=10)
                    response.raise_for_status()
                    jwks_uri = str(response.json()["jwks_uri"])
                except (httpx.HTTPError, ValueError, KeyError) as e:
                    log.error("OIDC provider %s: no discovery document at %s (%s)", provider.id, url, e)
                    raise OpenEOError(
                        "ServiceUnavailable",
                        f"The identity provider '{provider.id}' cannot be reached now.",
                        503,
                    ) from None
                client = jwt.PyJWKClient(jwks_uri, cache_jwk_set=True, lifespan=3600,
                                         cooldown_duration=self.jwks_cooldown_s, timeout=10)  # fmt: skip
                self._jwks[provider.id] = client
            return client

    def verify(self, value: str) -> Identity:
        """The identity of `oidc/<provider>/<token>` (the part after `Bearer `); `TokenInvalid` otherwise."""
        _, provider_id, token = (value.split("/", 2) + ["", ""])[:3]
        provider = self.providers.get(provider_id)
        if provider is None:
            raise _invalid(f"Unknown OIDC provider '{provider_id[:64]}'.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _invalid("The access token is not a JWT.") from None
        if header.get("alg") not in ALGORITHMS:
            raise _invalid(f"Tokens signed with {str(header.get('alg'))[:16]!r} are not accepted.")
        try:
            key = self._jwks_client(provider).get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            raise OpenEOError(
                "ServiceUnavailable",
                f"The keys of the identity provider '{provider.id}' cannot be fetched now.",
                503,
            ) from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError):
            raise _invalid("The access token is not signed by a key of its provider.") from None
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[str(header["alg"])], audience=provider.audience, issuer=provider.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]}, leeway=30,
            )  # fmt: skip
        except jwt.ExpiredSignatureError:
            raise _invalid("The access token has expired.") from None
        except jwt.InvalidAudienceError:
            raise _invalid("The access token is not meant for this service (audience).") from None
        except jwt.InvalidIssuerError:
            raise _invalid("The access token comes from another issuer.") from None
        except jwt.InvalidTokenError as e:
            raise _invalid(f"The access token is invalid ({type(e).__name__}).") from None
        raw = claims.get(provider.roles_claim, [])
        named = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
        roles = frozenset({"user"} | ({str(r) for r in named} & set(ROLES)))
        return Identity(f"{provider.id}:{claims['sub']}", roles)
