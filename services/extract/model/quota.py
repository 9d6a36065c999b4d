"""One model quota for every extract replica: a start schedule in a NATS KV key (#18).

Paced alone, N replicas would each send the whole requests-per-minute quota, N times too
many. The budget is one number in a KV key: when the next request may start (GCRA's
theoretical arrival time, without burst). A caller reads it with its revision, moves it
on by 60/rpm seconds with a compare-and-set on that revision (a replica that wrote first
makes the update fail, and the caller reads again), and waits for the start it reserved.
So starts are spaced 60/rpm seconds apart across all replicas, which uses a quota fully
whether the server counts per fixed minute, sliding window or token bucket. A 429 pushes
the next start back by the server's Retry-After for every replica.

Times are wall-clock seconds, shared by replicas whose clocks agree (NTP). NATS being
unreachable is a wait: the caller tries again with backoff for as long as it takes (and
the wait does not count against the task's run time), never a failure of the task.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

import nats
from nats.aio.client import Client as NatsClient
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from bytereview.core.outages import is_outage
from bytereview.core.worker_runtime import outlast, waiting_on_dependency

log = logging.getLogger(__name__)

BUCKET = "bytereview_quota"


def quota_key(model: str) -> str:
    """The KV key of `model`'s quota (KV keys allow letters, digits and `-_=./`)."""
    return "rpm." + re.sub(r"[^A-Za-z0-9_=-]", "_", model or "model")


def _unreachable(exc: BaseException) -> bool:
    """Any NATS error reading or writing the budget is an outage to wait out."""
    return is_outage(exc) or isinstance(exc, (nats.errors.Error, OSError))


class SharedQuota:
    """The start schedule every replica draws from (see the module docstring)."""

    def __init__(
        self,
        *,
        nats_url: str,
        rpm: int,
        key: str,
        bucket: str = BUCKET,
        replicas: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rpm <= 0:
            raise ValueError("a shared quota needs a requests-per-minute ceiling")
        self.rpm = rpm
        self.interval = 60.0 / rpm
        self._url = nats_url
        self._key = key
        self._bucket = bucket
        self._replicas = replicas
        self._clock = clock
        self._nc: NatsClient | None = None
        self._kv: KeyValue | None = None
        self._lock = asyncio.Lock()

    async def _store(self) -> KeyValue:
        async with self._lock:
            if self._kv is None:
                if self._nc is None:
                    self._nc = await nats.connect(
                        self._url,
                        name="bytereview-quota",
                        max_reconnect_attempts=-1,
                        reconnect_time_wait=1,
                    )
                # Idempotent: every replica declares the bucket; one value per key is kept.
                self._kv = await self._nc.jetstream().create_key_value(
                    bucket=self._bucket, history=1, replicas=self._replicas
                )
            return self._kv

    async def wait_turn(self) -> float:
        """Reserve the next start in the shared schedule and sleep until it comes; returns
        the reserved start (wall clock)."""
        after = await outlast(
            lambda: self._move(lambda next_start, now: max(next_start, now) + self.interval),
            is_down=_unreachable,
            what="the shared model quota (NATS)",
        )
        start = after - self.interval
        delay = start - self._clock()
        if delay > 0:
            # The pool's quota: more pods would wait too.
            with waiting_on_dependency("the shared model quota"):
                await asyncio.sleep(delay)
        return start

    async def push_back(self, seconds: float) -> None:
        """A 429: no replica starts a request for `seconds` (best effort: if NATS is down
        the caller still pauses on its own)."""
        until = self._clock() + seconds
        try:
            await self._move(lambda next_start, now: max(next_start, until))
        except Exception as exc:
            if not _unreachable(exc):
                raise
            log.warning("could not share a rate-limit pause (%s)", exc)

    async def _move(self, step: Callable[[float, float], float]) -> float:
        """Compare-and-set the next start to `step(next start, now)`; returns the new value."""
        kv = await self._store()
        while True:
            try:
                entry = await kv.get(self._key)
                current, revision = float(entry.value or b"0"), entry.revision
            except KeyNotFoundError:
                current, revision = 0.0, None
            value = step(current, self._clock())
            encoded = repr(value).encode()
            try:
                if revision is None:
                    await kv.create(self._key, encoded)
                else:
                    await kv.update(self._key, encoded, last=revision)
            except KeyWrongLastSequenceError:
                continue  # another replica moved it first: read it again
            return value

    async def aclose(self) -> None:
        if self._nc is not None:
            await self._nc.close()
            self._nc = None
            self._kv = None
