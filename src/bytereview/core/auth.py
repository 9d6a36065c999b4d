"""Credentials and principals. Services verify credentials themselves; the gateway only forwards.

A call carries `authorization: Bearer <token>` (a JWT, the dev token in dev mode,
or the internal worker token) or `x-api-key: <key>`. API keys are resolved by the
jobs service, which owns the table of their hashes.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jwt

from bytereview.core.constant_time import same_secret
from bytereview.core.errors import Unauthenticated
from bytereview.core.jwks import JwksCache, http_fetch
from bytereview.core.settings import Settings

API_KEY_PREFIX = "brk_"
# The headers (gRPC metadata keys) a credential travels in.
CREDENTIAL_HEADERS = ("authorization", "x-api-key")
DEV_SUBJECT = "dev"


class PrincipalKind(StrEnum):
    USER = "user"
    WORKER = "worker"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. For users, `subject` is stable across sign-ins (issuer|sub)."""

    kind: PrincipalKind
    subject: str
    email: str = ""
    display_name: str = ""
    # Set when the credential was an API key, resolved to its user's id.
    user_id: str = ""
    # A bearer JWT's verified claims (the jobs service grants the admin role from them).
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


WORKER = Principal(PrincipalKind.WORKER, "worker")


@dataclass(frozen=True, slots=True)
class Credentials:
    bearer: str = ""
    api_key: str = ""

    @classmethod
    def from_metadata(cls, metadata: Iterable[tuple[str, str | bytes]] | None) -> Credentials:
        """The call's credential. Raises Unauthenticated when it is ambiguous: a header given
        twice, or a bearer token beside an API key. Which one counted was an accident of
        order (the last entry here, the first at the gateway), and a proxy that checks one
        of them would let the other through to us."""
        values: dict[str, str] = {}
        for key, value in metadata or ():
            name = key.lower()
            if name in CREDENTIAL_HEADERS and name in values:
                raise Unauthenticated(f"the {name} header is given more than once")
            values[name] = value.decode() if isinstance(value, bytes) else value
        bearer = ""
        auth = values.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            bearer = auth[7:].strip()
        api_key = values.get("x-api-key", "").strip()
        if bearer and api_key:
            raise Unauthenticated("send one credential: a bearer token or an x-api-key, not both")
        return cls(bearer=bearer, api_key=api_key)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata that forwards these credentials."""
        out: list[tuple[str, str]] = []
        if self.bearer:
            out.append(("authorization", f"Bearer {self.bearer}"))
        if self.api_key:
            out.append(("x-api-key", self.api_key))
        return tuple(out)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # Keys are 256-bit random, so a plain SHA-256 is enough (no dictionary to defend against).
    return hashlib.sha256(key.encode()).hexdigest()


MAX_TOKEN_CHARS = 16 * 1024
ALGORITHMS = ["RS256", "ES256", "RS384", "ES384", "RS512", "EdDSA"]


class JwtVerifier:
    """Verifies bearer JWTs against a JWKS URL, issuer and audience.

    Works with any OIDC provider that publishes a JWKS: Firebase, Auth0, Keycloak...
    The keys come from a `JwksCache`, so verification never blocks the event loop.
    """

    def __init__(
        self, *, jwks_url: str, issuer: str, audience: str, keys: JwksCache | None = None
    ) -> None:
        self._keys = keys or JwksCache(http_fetch(jwks_url, timeout=10.0))
        self._issuer = issuer
        self._audience = audience

    async def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated("invalid bearer token: too long")
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid bearer token: {exc}") from exc
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("invalid bearer token: no signing key id (kid)")
        signing_key = await self._keys.key(kid)
        try:
            claims: Mapping[str, Any] = jwt.decode(
                token,
                signing_key.key,
                algorithms=ALGORITHMS,
                audience=self._audience or None,
                issuer=self._issuer or None,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid bearer token: {exc}") from exc
        if not claims["sub"].strip():
            # `require` takes "" as present: every such token would be one shared user.
            raise Unauthenticated("invalid bearer token: the subject (sub) is empty")
        issuer = str(claims.get("iss", ""))  # PyJWT refuses an iss that is not a string
        if "|" in issuer:
            # The tenant is `iss|sub`: with a "|" in the issuer, iss "a|b" + sub "c" and iss
            # "a" + sub "b|c" would be one user. Issuers are URLs (OIDC), which never hold one
            # unescaped; with no issuer configured, any iss a provider's key signed gets here.
            raise Unauthenticated("invalid bearer token: the issuer (iss) is not a URL")
        return Principal(
            PrincipalKind.USER,
            subject=f"{issuer}|{claims['sub']}",
            email=str(claims.get("email", "")),
            display_name=str(claims.get("name", "")),
            claims=claims,
        )


class TokenAuthenticator:
    """Turns bearer tokens into principals. API keys are left to the caller (they need the DB)."""

    def __init__(self, settings: Settings) -> None:
        self._dev_token = settings.secret("dev_token") if settings.is_dev else ""
        self._worker_token = settings.secret("worker_token")
        self._jwt: JwtVerifier | None = None
        if settings.jwt_jwks_url:
            self._jwt = JwtVerifier(
                jwks_url=settings.jwt_jwks_url,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )

    async def authenticate_bearer(self, token: str) -> Principal:
        if self._worker_token and same_secret(token, self._worker_token):
            return WORKER
        if self._dev_token and same_secret(token, self._dev_token):
            return Principal(PrincipalKind.USER, DEV_SUBJECT, "dev@localhost", "Developer")
        if self._jwt is not None and token.count(".") == 2:
            return await self._jwt.verify(token)
        raise Unauthenticated("invalid bearer token")
