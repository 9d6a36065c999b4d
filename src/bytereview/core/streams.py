"""JetStream work queues: stream and consumer declarations, and the Worker that drives a handler.

Streams and durable consumers are declared idempotently by whoever starts first;
workers bind to them. A handler returns (ack) or raises a classified error; the
Worker alone turns that into ack, nak(delay), term or in_progress heartbeats.
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
from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError

from bytereview.core.settings import Settings

log = logging.getLogger(__name__)

INGEST_SUBJECT = "bytereview.ingest.files"
EXTRACT_SUBJECT = "bytereview.extract.tasks"
# Core-NATS subject (no stream) that wakes WatchJob streams on every replica.
JOB_EVENTS_SUBJECT = "bytereview.events.jobs"
# Core-NATS subject where workers say how busy they are (`.<durable>.<pod>`), for the autoscaler.
WORKER_HEARTBEAT_SUBJECT = "bytereview.workers"


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A work-queue stream with one durable pull consumer shared by a worker pool."""

    stream: str
    subject: str
    durable: str
    ack_wait_seconds: float
    max_deliver: int
    backoff_seconds: tuple[float, ...]
    max_ack_pending: int


def ingest_queue(settings: Settings) -> QueueSpec:
    return QueueSpec(
        stream=settings.ingest_stream,
        subject=INGEST_SUBJECT,
        durable="ingest-workers",
        ack_wait_seconds=settings.ack_wait_seconds,
        max_deliver=settings.max_deliver,
        backoff_seconds=(5, 30, 120, 300),
        max_ack_pending=256,
    )


def extract_queue(settings: Settings) -> QueueSpec:
    return QueueSpec(
        stream=settings.extract_stream,
        subject=EXTRACT_SUBJECT,
        durable="extract-workers",
        ack_wait_seconds=settings.ack_wait_seconds,
        max_deliver=settings.max_deliver,
        backoff_seconds=(5, 30, 120, 300),
        max_ack_pending=1024,
    )


async def connect(settings: Settings, *, name: str) -> NatsClient:
    return await nats.connect(
        settings.nats_url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=1
    )


async def declare_queue(js: JetStreamContext, spec: QueueSpec, *, replicas: int = 1) -> None:
    """Create or update the stream and its durable consumer; safe to call from every process."""
    stream = api.StreamConfig(
        name=spec.stream,
        subjects=[spec.subject],
        retention=api.RetentionPolicy.WORK_QUEUE,
        storage=api.StorageType.FILE,
        num_replicas=replicas,
        # The outbox relay retries unsent rows; ids it repeats within this window are dropped.
        duplicate_window=15 * 60,
    )
    try:
        await js.add_stream(stream)
    except BadRequestError:
        await js.update_stream(stream)
    # No consumer BackOff: it would replace AckWait as the redelivery timer (5 s for a first
    # delivery), so a message waiting behind busy slots, or a model call longer than that,
    # would be delivered again while still being worked on. Workers nak with the backoff delay
    # themselves (Worker._process); AckWait, kept alive by in_progress(), covers crashed ones.
    consumer = api.ConsumerConfig(
        durable_name=spec.durable,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=spec.ack_wait_seconds,
        max_deliver=spec.max_deliver,
        max_ack_pending=spec.max_ack_pending,
        filter_subject=spec.subject,
    )
    try:
        await js.add_consumer(spec.stream, consumer)
    except BadRequestError:
        # An existing consumer with other settings: replace the mutable ones.
        await js.add_consumer(spec.stream, consumer)


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
        beats = asyncio.create_task(self._heartbeats())
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
            beats.cancel()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _heartbeats(self) -> None:
        """Tell the autoscaler how busy this pod is, so idle pods are removed first."""
        if self._nc is None:
            return
        subject = f"{WORKER_HEARTBEAT_SUBJECT}.{self._spec.durable}.{self._pod}"
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
        heartbeat = asyncio.create_task(self._heartbeat(msg))
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
            heartbeat.cancel()

    def _backoff(self, attempt: int) -> float:
        steps = self._spec.backoff_seconds
        return float(steps[min(attempt, len(steps)) - 1]) if steps else 0.0

    async def _heartbeat(self, msg: Msg) -> None:
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


async def consumer_lag(js: JetStreamContext, spec: QueueSpec) -> tuple[int, int]:
    """(num_pending, num_ack_pending) from the consumer's leader; (0, 0) if it does not exist."""
    try:
        info = await js.consumer_info(spec.stream, spec.durable)
    except NotFoundError:
        return (0, 0)
    return (int(info.num_pending or 0), int(info.num_ack_pending or 0))
