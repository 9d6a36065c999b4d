"""A local OIDC-style identity provider for tests: an RSA key, a JWKS endpoint, signed JWTs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://issuer.test"
AUDIENCE = "bytereview-test"


@dataclass
class IdentityProvider:
    jwks_url: str
    key: rsa.RSAPrivateKey
    kid: str = "test-key"
    # One entry per JWKS request served (tests count fetches).
    served: list[float] = field(default_factory=list)

    def token(self, subject: str, *, email: str = "", expires_in: int = 600, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "email": email or f"{subject}@example.test",
            "iat": now,
            "exp": now + expires_in,
            **claims,
        }
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": self.kid})

    def metadata(self, subject: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token(subject)}"),)


@contextmanager
def identity_provider(*, delay: float = 0.0) -> Iterator[IdentityProvider]:
    """The provider; `delay` seconds before each JWKS answer (a slow identity provider)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": "test-key", "use": "sig", "alg": "RS256"})
    body = json.dumps({"keys": [public]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            provider.served.append(time.monotonic())
            time.sleep(delay)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A shutdown check every 20 ms, not serve_forever's 0.5 s, which each exit waited out.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    provider = IdentityProvider(f"http://127.0.0.1:{server.server_port}/jwks.json", key)
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
