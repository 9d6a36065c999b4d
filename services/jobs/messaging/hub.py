"""The hub that wakes job watchers (WatchJob) and the outbox relay after a commit.

Writers mark the session: `record_event` (domain.events) adds the job to
`session.info[TOUCHED_JOBS]`, `enqueue` (messaging.outbox) sets `session.info[OUTBOX]`;
`committed` reads both once the transaction is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.streams import JOB_EVENTS_SUBJECT

log = logging.getLogger(__name__)

# session.info keys the writers set and `committed` reads.
TOUCHED_JOBS = "touched_jobs"
OUTBOX = "outbox"


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
        touched: set[str] = session.info.pop(TOUCHED_JOBS, set())
        if session.info.pop(OUTBOX, False):
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
