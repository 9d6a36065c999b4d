"""JetStream work queues: subjects, stream and durable-consumer declarations, consumer lag.

Streams and durable consumers are declared idempotently by whoever starts first (the jobs
service and every worker process); workers bind to them. The worker runtime that drives a
handler over a queue is `bytereview.core.worker_runtime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError

from bytereview.core.settings import Settings

log = logging.getLogger(__name__)

INGEST_SUBJECT = "bytereview.ingest.files"
EXTRACT_SUBJECT = "bytereview.extract.tasks"
# Core-NATS subject (no stream) that wakes WatchJob streams on every replica.
JOB_EVENTS_SUBJECT = "bytereview.events.jobs"
# Core-NATS subject where each worker publishes its in-flight count (`.<durable>.<pod>`), so
# the autoscaler removes idle pods first. Not to be confused with in-progress acks.
WORKER_LOAD_SUBJECT = "bytereview.workers"


# A lane consumer nobody has pulled from for this long is deleted by the server (its tenant
# has had no work for that long); a later message declares it again.
LANE_INACTIVE_SECONDS = 3600.0
# JetStream lists consumers this many at a time.
CONSUMER_PAGE = 256
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def tenant_token(tenant: str) -> str:
    """`tenant` as one subject token and consumer-name suffix (ids pass as they are)."""
    if _TOKEN.fullmatch(tenant):
        return tenant
    return hashlib.sha256(tenant.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A work-queue stream with one durable pull consumer shared by a worker pool.

    A `fair` queue is split into lanes, one per tenant: messages go to `<subject>.<tenant>`,
    each lane has its own durable consumer `<durable>-<tenant>` (declared by the workers
    when the lane has work), and workers share their free slots out across the lanes
    (`bytereview.core.fair_pull`). Work-queue streams forbid overlapping consumers, and the
    base consumer filters on `subject` alone, so messages published there (before lanes
    existed) are one more lane.
    """

    stream: str
    subject: str
    durable: str
    ack_wait_seconds: float
    max_deliver: int
    backoff_seconds: tuple[float, ...]
    max_ack_pending: int
    fair: bool = False

    @property
    def subjects(self) -> tuple[str, ...]:
        return (self.subject, f"{self.subject}.*") if self.fair else (self.subject,)

    def holds(self, subject: str) -> bool:
        """Whether a message on `subject` belongs to this queue."""
        return subject == self.subject or (self.fair and subject.startswith(f"{self.subject}."))

    def lane_subject(self, tenant: str) -> str:
        """Where `tenant`'s messages go (the plain subject for a queue without lanes)."""
        return f"{self.subject}.{tenant_token(tenant)}" if self.fair else self.subject

    def lane_durable(self, subject: str) -> str:
        """The durable consumer of the lane `subject` is on."""
        if subject == self.subject:
            return self.durable
        return f"{self.durable}-{subject[len(self.subject) + 1 :]}"


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
        # One lane per tenant: a big job must not starve another tenant's small one (#18).
        fair=True,
    )


def extract_lane_subject(tenant: str) -> str:
    """The subject of `tenant`'s extract tasks (its lane of the fair extract queue)."""
    return f"{EXTRACT_SUBJECT}.{tenant_token(tenant)}"


class StoppedWhileConnecting(Exception):
    """Told to stop before NATS answered: the caller ends without serving."""


# NATS's errors are said at most this often: nats-py's default logged a whole traceback on
# every connection attempt, one a second for as long as an outage lasted.
ERRORS_SAID_EVERY_SECONDS = 30.0


def said_errors(url: str) -> Callable[[Exception], Awaitable[None]]:
    """An `error_cb` logging one line per ERRORS_SAID_EVERY_SECONDS, with how many errors
    came since; the URL without credentials."""
    parts = urlsplit(url)
    where = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    last = -math.inf
    unsaid = 0

    async def said(exc: Exception) -> None:
        nonlocal last, unsaid
        unsaid += 1
        if time.monotonic() - last < ERRORS_SAID_EVERY_SECONDS:
            return
        last = time.monotonic()
        log.warning("NATS at %s: %s: %s (%d errors)", where, type(exc).__name__, exc, unsaid)
        unsaid = 0

    return said


async def connect(
    settings: Settings, *, name: str, stop: asyncio.Event | None = None
) -> NatsClient:
    """A NATS connection that reconnects for ever, the first one included (a NATS down
    while a pod starts is waited for). With `stop`: StoppedWhileConnecting once it is set
    before NATS answered. Nothing raced the first connection: a pod started during a NATS
    outage ignored SIGTERM until its grace period ended in a SIGKILL."""
    connecting = asyncio.ensure_future(
        nats.connect(
            settings.nats_url,
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            error_cb=said_errors(settings.nats_url),
        )
    )
    if stop is None:
        return await connecting
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if connecting.done():
        return connecting.result()
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await connecting
    raise StoppedWhileConnecting(f"{name}: told to stop before NATS answered")


async def declare_queue(js: JetStreamContext, spec: QueueSpec, *, replicas: int = 1) -> None:
    """Create or update the stream and its durable consumer; safe to call from every process."""
    stream = api.StreamConfig(
        name=spec.stream,
        subjects=list(spec.subjects),
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
    # themselves (worker_runtime.Worker); AckWait, kept alive by in_progress(), covers crashed ones.
    await declare_lane(js, spec, spec.subject)


async def declare_lane(js: JetStreamContext, spec: QueueSpec, subject: str) -> str:
    """Create or update the durable consumer of the lane `subject`; returns its name.

    Lane consumers go away by themselves once unused for LANE_INACTIVE_SECONDS; the base
    consumer stays (the autoscaler and the watchdog look it up)."""
    durable = spec.lane_durable(subject)
    consumer = api.ConsumerConfig(
        durable_name=durable,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=spec.ack_wait_seconds,
        max_deliver=spec.max_deliver,
        max_ack_pending=spec.max_ack_pending,
        filter_subject=subject,
        inactive_threshold=None if subject == spec.subject else LANE_INACTIVE_SECONDS,
    )
    try:
        await js.add_consumer(spec.stream, consumer)
    except BadRequestError:
        # An existing consumer with other settings: replace the mutable ones.
        await js.add_consumer(spec.stream, consumer)
    return durable


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """A queue's true counts, from its stream and every consumer on it (all its lanes).

    `arrived` is the stream's last sequence (every message ever stored; a redelivery does
    not move it), `messages` what the stream holds now: waiting, or delivered and not yet
    acknowledged (a work-queue stream drops a message when it is acked or terminated).
    """

    arrived: int
    messages: int
    in_flight: int
    redelivered: int = 0
    waiting_pulls: int = 0
    consumers: tuple[str, ...] = ()

    @property
    def pending(self) -> int:
        """Messages waiting for a worker."""
        return max(0, self.messages - self.in_flight)

    @property
    def completed(self) -> int:
        """Messages that left the queue: acked, terminated, or removed as dead letters."""
        return max(0, self.arrived - self.messages)


async def queue_counts(js: JetStreamContext, stream: str) -> QueueCounts | None:
    """The counts of `stream` and all its consumers; None when the stream does not exist."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return None
    in_flight = redelivered = waiting = 0
    names: list[str] = []
    while True:  # the consumer list comes in pages
        page = await js.consumers_info(stream, offset=len(names))
        for consumer in page:
            names.append(consumer.name)
            in_flight += int(consumer.num_ack_pending or 0)
            redelivered += int(consumer.num_redelivered or 0)
            waiting += int(consumer.num_waiting or 0)
        if len(page) < CONSUMER_PAGE:
            break
    return QueueCounts(
        arrived=int(info.state.last_seq or 0),
        messages=int(info.state.messages or 0),
        in_flight=in_flight,
        redelivered=redelivered,
        waiting_pulls=waiting,
        consumers=tuple(names),
    )


async def consumer_lag(js: JetStreamContext, spec: QueueSpec) -> tuple[int, int]:
    """(waiting, unacknowledged) messages; (0, 0) if the queue does not exist.

    A queue without lanes asks its consumer's leader; a fair one counts its stream and
    every lane consumer (a lane nobody pulled from yet has no consumer at all)."""
    if spec.fair:
        counts = await queue_counts(js, spec.stream)
        return (0, 0) if counts is None else (counts.pending, counts.in_flight)
    try:
        info = await js.consumer_info(spec.stream, spec.durable)
    except NotFoundError:
        return (0, 0)
    return (int(info.num_pending or 0), int(info.num_ack_pending or 0))
