"""Job events (the audit trail), outbox rows, and the hub that wakes job watchers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from google.protobuf.message import Message
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.streams import JOB_EVENTS_SUBJECT
from services.jobs import models

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"


def record_event(
    session: AsyncSession,
    job: models.Job,
    *,
    kind: str,
    actor: str,
    subject: str,
    from_status: str = "",
    to_status: str = "",
    message: str = "",
) -> models.JobEvent:
    """Append an event to the job's trail. The caller holds the job row (locked on PostgreSQL)."""
    job.event_sequence += 1
    job.updated_at = models.utcnow()
    event = models.JobEvent(
        job_id=job.id,
        sequence=job.event_sequence,
        kind=kind,
        actor=actor,
        subject=subject,
        from_status=from_status,
        to_status=to_status,
        message=message[:2000],
    )
    session.add(event)
    session.info.setdefault("touched_jobs", set()).add(job.id)
    return event


def enqueue(session: AsyncSession, *, message_id: str, subject: str, payload: Message) -> None:
    """Add an outbox row in the caller's transaction; the relay publishes it after commit."""
    session.add(
        models.OutboxMessage(id=message_id, subject=subject, payload=payload.SerializeToString())
    )
    session.info["outbox"] = True


class EventHub:
    """Wakes WatchJob streams when a job's events change, on this replica and the others.

    Events live in the database; the hub carries only "job X changed" wake-ups,
    over core NATS so every jobs replica hears them. Watchers also poll slowly,
    so a lost wake-up delays an event by at most the poll interval.
    """

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._nc: NatsClient | None = None
        self._sub: Subscription | None = None
        self.outbox_ready = asyncio.Event()

    async def attach(self, nc: NatsClient) -> None:
        self._nc = nc
        self._sub = await nc.subscribe(f"{JOB_EVENTS_SUBJECT}.*", cb=self._on_remote)

    async def detach(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        self._nc = None

    async def _on_remote(self, msg: Msg) -> None:
        self._wake_local(msg.subject.rsplit(".", 1)[-1])

    def _wake_local(self, job_id: str) -> None:
        for event in self._waiters.get(job_id, ()):
            event.set()

    async def committed(self, session: AsyncSession) -> None:
        """Call after a commit: wakes watchers of touched jobs and the outbox relay."""
        touched: set[str] = session.info.pop("touched_jobs", set())
        if session.info.pop("outbox", False):
            self.outbox_ready.set()
        for job_id in touched:
            if self._nc is not None and self._nc.is_connected:
                with contextlib.suppress(Exception):
                    await self._nc.publish(f"{JOB_EVENTS_SUBJECT}.{job_id}", b"")
            else:
                self._wake_local(job_id)

    def subscribe(self, job_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters[job_id].add(event)
        return event

    def unsubscribe(self, job_id: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get(job_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[job_id]
