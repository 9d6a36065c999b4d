"""JetStream work queues: subjects, stream and durable-consumer declarations, consumer lag.

Streams and durable consumers are declared idempotently by whoever starts first (the jobs
service and every worker process); workers bind to them. The worker runtime that drives a
handler over a queue is `bytereview.core.worker_runtime`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
    # themselves (worker_runtime.Worker); AckWait, kept alive by in_progress(), covers crashed ones.
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


async def consumer_lag(js: JetStreamContext, spec: QueueSpec) -> tuple[int, int]:
    """(num_pending, num_ack_pending) from the consumer's leader; (0, 0) if it does not exist."""
    try:
        info = await js.consumer_info(spec.stream, spec.durable)
    except NotFoundError:
        return (0, 0)
    return (int(info.num_pending or 0), int(info.num_ack_pending or 0))
