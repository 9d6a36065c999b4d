"""Prometheus metrics of the jobs service: jobs by status, queue depth, task latency, outbox lag."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.js import JetStreamContext
from prometheus_client import Gauge, Histogram
from sqlalchemy import func, select

from bytereview.core import streams
from services.jobs.domain.context import JobsContext
from services.jobs.domain.status import JobStatus
from services.jobs.messaging.outbox import OutboxRelay
from services.jobs.store import models

log = logging.getLogger(__name__)

JOBS_BY_STATUS = Gauge("bytereview_jobs", "Jobs by status", ["status"])
QUEUE_DEPTH = Gauge(
    "bytereview_queue_depth", "Messages pending or unacknowledged per work queue", ["queue"]
)
OUTBOX_LAG = Gauge("bytereview_outbox_lag_seconds", "Age of the oldest unpublished outbox row")
TASK_SECONDS = Histogram(
    "bytereview_task_duration_seconds",
    "Extraction task run time, from start to result or failure",
    ["outcome"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)


def observe_task(task: models.Task, outcome: str) -> None:
    if task.started_at is None or task.finished_at is None:
        return
    start, end = task.started_at, task.finished_at
    if start.tzinfo is None or end.tzinfo is None:
        start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    TASK_SECONDS.labels(outcome).observe(max(0.0, (end - start).total_seconds()))


async def refresh(
    ctx: JobsContext, js: JetStreamContext, relay: OutboxRelay, queues: list[streams.QueueSpec]
) -> None:
    async with ctx.reading() as session:
        counts = dict(
            (
                await session.execute(
                    select(models.Job.status, func.count()).group_by(models.Job.status)
                )
            ).all()
        )
    for status in JobStatus:
        JOBS_BY_STATUS.labels(status).set(counts.get(status, 0))
    for spec in queues:
        pending, ack_pending = await streams.consumer_lag(js, spec)
        QUEUE_DEPTH.labels(spec.durable).set(pending + ack_pending)
    OUTBOX_LAG.set(await relay.oldest_unsent_age())


async def refresh_forever(
    ctx: JobsContext,
    js: JetStreamContext,
    relay: OutboxRelay,
    queues: list[streams.QueueSpec],
    stop: asyncio.Event,
    interval: float = 15.0,
) -> None:
    # Ends on `stop` as well as on cancellation: a cancellation can be lost inside a library
    # call (wait_for on 3.11) and then swallowed by the suppress below.
    while not stop.is_set():
        with contextlib.suppress(Exception):
            await refresh(ctx, js, relay, queues)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await stop.wait()
