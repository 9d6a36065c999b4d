"""The identity provider's signing keys, fetched without ever blocking the event loop.

Every RPC authenticates on the jobs service's one event loop, so the JWKS fetch must not hold
it: a slow or hung identity provider would stall every caller, dev-token and API-key callers
included (#14). Rules:
- one fetch in flight at a time, awaited by the callers that need it and no one else;
- keys past `max_age` are still used while a refresh runs in the background
  (stale-while-revalidate), and kept when the refresh fails;
- an unknown `kid` (a key rotation, or a made-up one) refetches at most once per
  `min_refetch_seconds`: forged kids cannot turn us into a request amplifier.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import jwt

from bytereview.core.errors import Unauthenticated, Unavailable

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 1024 * 1024
Fetch = Callable[[], Awaitable[dict[str, Any]]]


def http_fetch(url: str, *, timeout: float) -> Fetch:
    """A fetch of `url`'s JSON, run in a thread so the loop stays free while it waits."""

    def get() -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - configured URL
            data = json.loads(response.read(MAX_JWKS_BYTES + 1)[:MAX_JWKS_BYTES])
        if not isinstance(data, dict):
            raise ValueError("the JWKS document is not a JSON object")
        return data

    async def fetch() -> dict[str, Any]:
        return await asyncio.to_thread(get)

    return fetch


class JwksCache:
    """Signing keys by `kid`, refreshed in the background (see the module docstring)."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        max_age_seconds: float = 600.0,
        min_refetch_seconds: float = 30.0,
    ) -> None:
        self._fetch = fetch
        self._max_age = max_age_seconds
        self._min_refetch = min_refetch_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._in_flight: asyncio.Task[None] | None = None
        self.fetches = 0  # how many fetches were started (tests and metrics read it)

    async def key(self, kid: str) -> jwt.PyJWK:
        now = time.monotonic()
        found = self._keys.get(kid)
        if found is not None:
            if now - self._fetched_at > self._max_age and self._may_fetch(now):
                self._refresh()  # not awaited: the stale key serves this call
            return found
        if self._in_flight is not None:
            await asyncio.shield(self._in_flight)
        elif not self._keys or self._may_fetch(now):
            await asyncio.shield(self._refresh())
        found = self._keys.get(kid)
        if found is not None:
            return found
        if not self._keys:
            raise Unavailable("the identity provider's signing keys are unavailable; retry")
        raise Unauthenticated("invalid bearer token: unknown signing key id")

    def _may_fetch(self, now: float) -> bool:
        return self._in_flight is None and now - self._attempted_at >= self._min_refetch

    def _refresh(self) -> asyncio.Task[None]:
        if self._in_flight is None:
            self._attempted_at = time.monotonic()
            self.fetches += 1
            self._in_flight = asyncio.create_task(self._load(), name="jwks-fetch")
        return self._in_flight

    async def _load(self) -> None:
        try:
            document = await self._fetch()
            keys = {
                key.key_id: key
                for key in jwt.PyJWKSet.from_dict(document).keys
                if isinstance(key.key_id, str)
            }
        except Exception as exc:
            log.warning("fetching the identity provider's keys failed: %s", exc)
        else:
            self._keys = keys
            self._fetched_at = time.monotonic()
        finally:
            self._in_flight = None
