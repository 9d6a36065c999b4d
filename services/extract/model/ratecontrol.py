"""Rate control for model calls: an AIMD concurrency limit under a requests-per-minute ceiling.

A model quota is shared by every task of a worker, so it is managed here, once per worker,
and not by redelivering messages: a 429 shrinks the window and the call waits and tries
again in place, so it never uses up one of the task's JetStream deliveries. The
requests-per-minute ceiling is shared by every replica too when a `SharedQuota` is given
(services.extract.model.quota): starts are then spaced across the whole pool, not per worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bytereview.core.worker_runtime import waiting_on_dependency
from services.extract import metrics
from services.extract.base import ExtractionError
from services.extract.model.quota import SharedQuota

T = TypeVar("T")


class RateController:
    """Additive-increase/multiplicative-decrease limit on concurrent calls, plus an RPM cap.

    - Every success raises the limit by 1/limit (one slot per window of successes).
    - A 429 halves it (never below 1) and makes every caller wait out the Retry-After.
    - Starts are spaced 60/rpm seconds apart (0 = no cap): evenly paced calls use a quota
      fully whether the server counts per fixed minute, sliding window or token bucket.
    """

    def __init__(
        self,
        *,
        max_concurrency: int,
        rpm: int = 0,
        max_wait_seconds: float = 600.0,
        default_backoff_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedQuota | None = None,
    ) -> None:
        self.max_concurrency = max(1, max_concurrency)
        self.limit = float(self.max_concurrency)
        # With a shared quota the pool-wide schedule paces the starts, not this worker.
        self.rpm = 0 if shared is not None else max(0, rpm)
        self.shared = shared
        self.max_wait_seconds = max_wait_seconds
        self.default_backoff_seconds = default_backoff_seconds
        self._clock = clock
        self._active = 0
        self._next_start = 0.0
        self._resume_at = 0.0
        self._changed = asyncio.Condition()

    @property
    def active(self) -> int:
        return self._active

    async def call(
        self, make_call: Callable[[], Awaitable[T]], *, max_wait: float | None = None
    ) -> T:
        """Run `make_call()` within the limits; on a 429 wait and try again, up to max_wait."""
        wait = self.max_wait_seconds if max_wait is None else max_wait
        deadline = self._clock() + wait
        while True:
            await self._acquire()
            try:
                if self.shared is not None:
                    await self.shared.wait_turn()
                result = await make_call()
            except ExtractionError as exc:
                if not exc.rate_limited:
                    await self._release(success=False)
                    raise
                await self._release(success=False)
                await self._throttle(exc.retry_after)
                metrics.RATE_LIMITED.inc()
                metrics.RETRIES.labels("rate_limited").inc()
                if self._clock() >= deadline:
                    # Quota still exhausted after a long wait: hand the task back to the
                    # queue (a retryable failure) rather than hold a worker slot forever.
                    raise
                continue
            except BaseException:
                await self._release(success=False)
                raise
            await self._release(success=True)
            return result

    async def paced(self) -> None:
        """Wait for one more start within the requests-per-minute ceiling, for a request made
        inside a `call` that holds its concurrency slot already (the extractor's health
        probe): a request spends the quota whatever it asks, so the probe takes its start as
        the call's own request did; it takes no slot of its own (its caller's waits on it)."""
        if self.shared is not None:
            await self.shared.wait_turn()
            return
        if not self.rpm:
            return
        async with self._changed:
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + 60.0 / self.rpm
        if start > now:
            with waiting_on_dependency("the model's rate limits"):
                await asyncio.sleep(start - now)

    async def _acquire(self) -> None:
        async with self._changed:
            while True:
                now = self._clock()
                wait = self._wait_time(now)
                if wait <= 0:
                    self._active += 1
                    if self.rpm:
                        self._next_start = max(now, self._next_start) + 60.0 / self.rpm
                    return
                # Woken early by a release; otherwise when the wait is over. Waiting on the
                # model's quota: the autoscaler adds no pods for it (they would wait too).
                with (
                    contextlib.suppress(TimeoutError),
                    waiting_on_dependency("the model's rate limits"),
                ):
                    async with asyncio.timeout(wait):
                        await self._changed.wait()

    def _wait_time(self, now: float) -> float:
        if now < self._resume_at:
            return self._resume_at - now
        if self._active >= int(self.limit):
            return 60.0  # until a release notifies
        if self.rpm and now < self._next_start:
            return self._next_start - now
        return 0.0

    async def _release(self, *, success: bool) -> None:
        async with self._changed:
            self._active -= 1
            if success:
                self.limit = min(float(self.max_concurrency), self.limit + 1.0 / self.limit)
            self._changed.notify_all()

    async def _throttle(self, retry_after: float | None) -> None:
        """A 429: halve the window and pause new starts until the server's Retry-After."""
        async with self._changed:
            self.limit = max(1.0, self.limit / 2)
            pause = retry_after if retry_after is not None else self.default_backoff_seconds
            self._resume_at = max(self._resume_at, self._clock() + pause)
            metrics.CONCURRENCY_LIMIT.set(self.limit)
            self._changed.notify_all()
        if self.shared is not None:
            await self.shared.push_back(pause)  # every replica pauses, not just this one
