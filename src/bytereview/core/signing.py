"""HMAC-signed storage URLs for the local backend, served by the gateway.

The signature covers method, key, expiry and every extra parameter, so none of
them can be changed without invalidating the URL.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import urlencode

from bytereview.core.constant_time import same_secret


class SignatureError(ValueError):
    """A signed URL that is forged, altered or expired."""


def _digest(secret: str, method: str, params: Mapping[str, str]) -> str:
    # One line per parameter, `name=value`: a name holding `=` or a line break, or a value
    # holding a line break, could make another set of parameters read as the same lines.
    if any("=" in k or "\n" in k or "\n" in v for k, v in params.items()):
        raise SignatureError("malformed parameters")
    canonical = method.upper() + "\n" + "\n".join(f"{k}={params[k]}" for k in sorted(params))
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def sign(secret: str, *, method: str, key: str, expires: int, **extra: str) -> dict[str, str]:
    """Query parameters for a URL allowing `method` on `key` until `expires` (unix seconds)."""
    params = {"key": key, "expires": str(expires), **extra}
    return {**params, "sig": _digest(secret, method, params)}


def verify(
    secret: str, *, method: str, params: Mapping[str, str], now: float | None = None
) -> dict[str, str]:
    """Check a signed URL's query parameters; return them without the signature."""
    unsigned = {k: v for k, v in params.items() if k != "sig"}
    signature = params.get("sig", "")
    if not signature or "key" not in unsigned or "expires" not in unsigned:
        raise SignatureError("missing signature parameters")
    if not same_secret(signature, _digest(secret, method, unsigned)):
        raise SignatureError("invalid signature")
    try:
        expires = int(unsigned["expires"])
    except ValueError as exc:
        raise SignatureError("invalid expiry") from exc
    if (time.time() if now is None else now) > expires:
        raise SignatureError("URL expired")
    return unsigned


def encode_query(params: Mapping[str, str]) -> str:
    return urlencode(params)
