"""Page tokens: the one codec every List call of the jobs service uses (AIP-158).

A token is a keyset cursor: the sort key of the last row served, ending with its id, so the
next page starts strictly after it (`WHERE (key...) > (last...)`, an index range scan) and
costs the same at page 1 and page 2,000, unlike an OFFSET. Rows inserted or deleted between
pages never shift a page: nothing is served twice or skipped among the rows that stay.

The token is opaque (base64url), bounded in length and tamper-evident: an HMAC-SHA256 (cut to
128 bits) over the *scope* and the key. The scope names the query (collection, parent, filter
and order), so a token from another query, another job or another user fails its check just
like an edited one. The scope is covered but not carried: it is recomputed from the request.
The key is derived from the install's signing secret, so tokens survive restarts and are
accepted by every replica; rotating the secret invalidates outstanding tokens (their clients
restart from page one, which AIP allows).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import hmac
import json
from collections.abc import Sequence

from bytereview.core.errors import InvalidArgument

# One value of a sort key, as stored in the token.
KeyValue = str | int | dt.datetime
Key = tuple[KeyValue, ...]

_VERSION = b"\x01"
_MAC_BYTES = 16
# The longest key is a file's path (2,048 characters, up to 4 bytes each in UTF-8) plus its
# id; anything longer was not made here. Checked before any decoding work.
MAX_PAGE_TOKEN_CHARS = 12_000
_INVALID = "page_token is invalid for this request: pass the next_page_token of the same query"


class PageTokens:
    """Encodes and checks page tokens with one install-wide key."""

    def __init__(self, secret: str) -> None:
        # A key of its own, so a page token can never double as any other signature.
        self._key = hmac.new(secret.encode(), b"bytereview page tokens v1", hashlib.sha256).digest()

    def _mac(self, scope: str, payload: bytes) -> bytes:
        message = scope.encode() + b"\x00" + payload
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, scope: str, key: Sequence[KeyValue]) -> str:
        payload = json.dumps(
            [_dump(v) for v in key], ensure_ascii=False, separators=(",", ":")
        ).encode()
        raw = _VERSION + self._mac(scope, payload) + payload
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, token: str, scope: str) -> Key | None:
        """The key in `token` (None for the first page), or InvalidArgument."""
        if not token:
            return None
        if len(token) > MAX_PAGE_TOKEN_CHARS or not token.isascii():
            raise InvalidArgument("page_token is malformed")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, binascii.Error) as exc:
            raise InvalidArgument("page_token is malformed") from exc
        if len(raw) <= 1 + _MAC_BYTES or raw[:1] != _VERSION:
            raise InvalidArgument("page_token is malformed")
        mac, payload = raw[1 : 1 + _MAC_BYTES], raw[1 + _MAC_BYTES :]
        if not hmac.compare_digest(mac, self._mac(scope, payload)):
            raise InvalidArgument(_INVALID)
        # Only this service made the payload (the MAC says so); parsed defensively anyway.
        try:
            values = json.loads(payload)
            return tuple(_load(v) for v in values)
        except (ValueError, TypeError, RecursionError) as exc:
            raise InvalidArgument("page_token is malformed") from exc


def _dump(value: KeyValue) -> object:
    if isinstance(value, dt.datetime):
        # Times keep microseconds (the stored precision) and are always UTC.
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return {"t": value.astimezone(dt.UTC).isoformat()}
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"a page key holds str, int or datetime, not {type(value).__name__}")
    return value


def _load(value: object) -> KeyValue:
    if isinstance(value, dict) and isinstance(value.get("t"), str):
        return dt.datetime.fromisoformat(value["t"])
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError("unexpected value in a page key")


@functools.lru_cache(maxsize=4)
def page_tokens(secret: str) -> PageTokens:
    """The codec for an install's signing secret (one per process in practice)."""
    return PageTokens(secret)
