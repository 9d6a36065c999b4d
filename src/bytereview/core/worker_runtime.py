"""The worker runtime: pulls from one durable consumer and drives a handler per message.

A handler returns (ack) or raises a classified error; the Worker alone turns that into
ack, nak(delay) or term, and renews each message's AckWait with in-progress acks while
its handler runs. Queue declarations live in `bytereview.core.streams`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from bytereview.core.streams import WORKER_LOAD_SUBJECT, QueueSpec

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """Transient failure: redeliver after `delay` seconds."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Permanent(Exception):
    """Will never succeed: stop redelivering (the handler has recorded why)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    data: bytes
    subject: str
    attempt: int
    max_deliver: int

    @property
    def is_last_attempt(self) -> bool:
        return self.max_deliver > 0 and self.attempt >= self.max_deliver


Handler = Callable[[Delivery], Awaitable[None]]


class Worker:
    """Pulls from one durable consumer and runs `handler` with bounded concurrency.

    `run()` returns after `stop()`: fetching stops at once, in-flight messages get
    `grace_seconds` to finish, and whatever is still running is nak'ed so another
    worker picks it up.
    """

    def __init__(
        self,
        *,
        js: JetStreamContext,
        spec: QueueSpec,
        handler: Handler,
        concurrency: int,
        grace_seconds: float,
        nc: NatsClient | None = None,
        pod: str = "",
    ) -> None:
        self._nc = nc
        self._pod = pod or socket.gethostname()
        self._js = js
        self._spec = spec
        self._handler = handler
        self._concurrency = max(1, concurrency)
        self._grace = grace_seconds
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(self._concurrency)
        self._inflight: dict[asyncio.Task[None], Msg] = {}
        self.processed = 0

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        sub = await self._js.pull_subscribe_bind(self._spec.durable, stream=self._spec.stream)
        load = asyncio.create_task(self._publish_load())
        try:
            while not self._stopping.is_set():
                # Wait for a free slot, or for stop(): a full worker must still drain on SIGTERM.
                if not await self._acquire_slot():
                    break
                free = 1 + self._free_slots()
                msgs = await self._fetch(sub, free)
                if not msgs:
                    self._slots.release()
                    continue
                # One slot is held already; take one more per extra message.
                for _ in msgs[1:]:
                    await self._slots.acquire()
                for msg in msgs:
                    task = asyncio.create_task(self._process(msg))
                    self._inflight[task] = msg
                    task.add_done_callback(self._done)
        finally:
            await self._drain()
            load.cancel()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _publish_load(self) -> None:
        """Publish this pod's in-flight count, so the autoscaler removes idle pods first."""
        if self._nc is None:
            return
        subject = f"{WORKER_LOAD_SUBJECT}.{self._spec.durable}.{self._pod}"
        while True:
            payload = json.dumps({"pod": self._pod, "inflight": self.inflight}).encode()
            with contextlib.suppress(Exception):
                await self._nc.publish(subject, payload)
            await asyncio.sleep(2)

    async def _acquire_slot(self) -> bool:
        acquire = asyncio.create_task(self._slots.acquire())
        stop = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not acquire.done():
            acquire.cancel()
        try:
            await acquire
        except asyncio.CancelledError:
            return False
        if self._stopping.is_set():
            self._slots.release()
            return False
        return True

    def _free_slots(self) -> int:
        # asyncio.Semaphore has no public counter; _value is stable API in practice.
        return max(0, int(getattr(self._slots, "_value", 0)))

    async def _fetch(self, sub: JetStreamContext.PullSubscription, batch: int) -> list[Msg]:
        fetch = asyncio.create_task(sub.fetch(batch, timeout=1.0))
        stop = asyncio.create_task(self._stopping.wait())
        done, _ = await asyncio.wait({fetch, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if fetch not in done:
            fetch.cancel()
            with contextlib.suppress(BaseException):
                await fetch
            return []
        try:
            return fetch.result()
        except (TimeoutError, nats.errors.TimeoutError):
            return []

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._slots.release()

    async def _process(self, msg: Msg) -> None:
        meta = msg.metadata
        delivery = Delivery(
            data=msg.data,
            subject=msg.subject,
            attempt=int(meta.num_delivered or 1),
            max_deliver=self._spec.max_deliver,
        )
        keep_alive = asyncio.create_task(self._ack_in_progress(msg))
        try:
            await self._handler(delivery)
        except RetryLater as exc:
            delay = exc.delay if exc.delay is not None else self._backoff(delivery.attempt)
            log.warning("retry in %.0f s (attempt %d): %s", delay, delivery.attempt, exc)
            await msg.nak(delay=delay)
        except Permanent as exc:
            log.warning("permanent failure: %s", exc)
            await msg.term()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await msg.nak()
            raise
        except Exception:
            log.exception("handler failed (attempt %d)", delivery.attempt)
            if delivery.is_last_attempt:
                # No nak: when the ack wait runs out JetStream gives up and publishes a
                # MAX_DELIVERIES advisory, which the jobs service records as a dead letter.
                return
            await msg.nak()
        else:
            await msg.ack()
            self.processed += 1
        finally:
            keep_alive.cancel()

    def _backoff(self, attempt: int) -> float:
        steps = self._spec.backoff_seconds
        return float(steps[min(attempt, len(steps)) - 1]) if steps else 0.0

    async def _ack_in_progress(self, msg: Msg) -> None:
        """Renew the message's AckWait while its handler runs."""
        interval = max(self._spec.ack_wait_seconds / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _drain(self) -> None:
        if not self._inflight:
            return
        log.info("draining %d in-flight message(s)", len(self._inflight))
        _, pending = await asyncio.wait(set(self._inflight), timeout=self._grace)
        for task in pending:
            task.cancel()  # _process naks on cancellation
        if pending:
            await asyncio.wait(pending, timeout=5)
