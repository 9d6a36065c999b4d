"""A small OpenID Connect provider for browser tests: discovery, authorization code + PKCE, JWKS.

It speaks the real protocol (RFC 6749 code flow, RFC 7636 S256 challenge, an RS256 ID token
the platform verifies through JWKS) and approves every sign-in as one configured user, in
place of a login form.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "bytereview-web"


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str


@dataclass
class Provider:
    issuer: str
    key: rsa.RSAPrivateKey
    subject: str = "olivia"
    email: str = "olivia@example.test"
    name: str = "Olivia Oidc"
    grants: dict[str, Grant] = field(default_factory=dict)
    # Every token request's outcome, for assertions ("ok" or the error code).
    token_requests: list[str] = field(default_factory=list)

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": self.subject,
            "email": self.email,
            "name": self.name,
            "iat": now,
            "exp": now + 600,
        }
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "oidc-test"})


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@contextmanager
def oidc_provider() -> Iterator[Provider]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "oidc-test", "use": "sig", "alg": "RS256"})
    provider = Provider("", key)

    class Handler(BaseHTTPRequestHandler):
        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("access-control-allow-origin", "*")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/.well-known/openid-configuration":
                self._json(
                    200,
                    {
                        "issuer": provider.issuer,
                        "authorization_endpoint": f"{provider.issuer}/authorize",
                        "token_endpoint": f"{provider.issuer}/token",
                        "jwks_uri": f"{provider.issuer}/jwks",
                        "response_types_supported": ["code"],
                        "code_challenge_methods_supported": ["S256"],
                    },
                )
            elif url.path == "/jwks":
                self._json(200, {"keys": [jwk]})
            elif url.path == "/authorize":
                self._authorize({k: v[0] for k, v in parse_qs(url.query).items()})
            else:
                self._json(404, {"error": "not_found"})

        def _authorize(self, query: dict[str, str]) -> None:
            if (
                query.get("response_type") != "code"
                or query.get("client_id") != CLIENT_ID
                or query.get("code_challenge_method") != "S256"
                or not query.get("code_challenge")
                or "openid" not in query.get("scope", "").split()
            ):
                self._json(400, {"error": "invalid_request"})
                return
            code = secrets.token_urlsafe(16)
            provider.grants[code] = Grant(
                CLIENT_ID, query["redirect_uri"], query["code_challenge"], query.get("nonce", "")
            )
            back = urlencode({"code": code, "state": query.get("state", "")})
            self.send_response(302)
            self.send_header("location", f"{query['redirect_uri']}?{back}")
            self.end_headers()

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/token":
                self._json(404, {"error": "not_found"})
                return
            length = int(self.headers.get("content-length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            grant = provider.grants.pop(form.get("code", ""), None)
            error = ""
            if form.get("grant_type") != "authorization_code" or grant is None:
                error = "invalid_grant"
            elif form.get("client_id") != grant.client_id:
                error = "invalid_client"
            elif (
                form.get("redirect_uri") != grant.redirect_uri
                or _s256(form.get("code_verifier", "")) != grant.challenge
            ):
                error = "invalid_grant"
            provider.token_requests.append(error or "ok")
            if error or grant is None:
                self._json(400, {"error": error})
                return
            token = provider.id_token(grant.nonce)
            self._json(
                200,
                {
                    "id_token": token,
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": 600,
                },
            )

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    # A shutdown check every 20 ms, not serve_forever's 0.5 s, which each exit waited out.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
