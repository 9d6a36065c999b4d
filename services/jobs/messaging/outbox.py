"""The transactional outbox relay: publishes committed outbox rows to JetStream.

Rows are written in the same transaction as the state change that needs the
message. The relay publishes each with `Nats-Msg-Id` = row id and marks it sent.
If it dies between publish and mark, the row is published again and JetStream's
duplicate window drops the repeat, so every message arrives once. On PostgreSQL,
`FOR UPDATE SKIP LOCKED` lets several jobs replicas relay side by side.

The relay is fair between lanes: a lane is a subject, and extract tasks go to their
tenant's subject (`bytereview.extract.tasks.<owner>`). Oldest row first across all lanes
made a small job's 5 task messages wait behind a big job's 10,000 in the outbox before the
workers' fair pulling (bytereview.fair_pull) could see them. Each pass shares its batch
out evenly between the lanes holding unsent rows, oldest first within a lane.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message
from nats.js import JetStreamContext
from sqlalchemy import Row, delete, insert, literal, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.jobs.messaging.hub import OUTBOX
from services.jobs.store import models
from services.jobs.store.db import SQLITE_BEGIN

log = logging.getLogger(__name__)

# Lanes served in one pass at most (each gets at least one row): with more lanes waiting,
# the next pass goes on after the last one served. Also under SQLite's limit of 500 arms
# in one compound SELECT.
MAX_LANES = 64


def enqueue(session: AsyncSession, *, message_id: str, subject: str, payload: Message) -> None:
    """Add an outbox row in the caller's transaction; the relay publishes it after commit."""
    session.add(
        models.OutboxMessage(id=message_id, subject=subject, payload=payload.SerializeToString())
    )
    session.info[OUTBOX] = True


async def enqueue_many(session: AsyncSession, messages: Sequence[tuple[str, str, Message]]) -> None:
    """`enqueue` for many (message id, subject, payload) at once: one bulk INSERT, no ORM
    objects (StartJob queues a message per task, 10,000 on a big job)."""
    if not messages:
        return
    now = models.utcnow()
    await session.execute(
        insert(models.OutboxMessage),
        [
            {
                "id": message_id,
                "subject": subject,
                "payload": payload.SerializeToString(),
                "created_at": now,
                "sent_at": None,
                "attempts": 0,
            }
            for message_id, subject, payload in messages
        ],
    )
    session.info[OUTBOX] = True


class OutboxRelay:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        js: JetStreamContext,
        wakeup: asyncio.Event,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        keep_sent: dt.timedelta = dt.timedelta(days=1),
    ) -> None:
        self._sessions = sessions
        self._js = js
        self._wakeup = wakeup
        self._batch = batch_size
        self._poll = poll_seconds
        self._keep_sent = keep_sent
        self._stopping = asyncio.Event()
        self._next_lane = ""
        self._sqlite = sessions.kw["bind"].dialect.name == "sqlite"
        self.published = 0

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                _, more = await self._relay_pass()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                more = False
            if more:
                continue  # more are waiting
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wakeup.wait()

    async def relay_once(self) -> int:
        """Publish one batch of unsent rows; returns how many were sent."""
        sent, _ = await self._relay_pass()
        return sent

    async def _relay_pass(self) -> tuple[int, bool]:
        """One batch: returns how many rows were sent and whether more may be waiting.

        The batch is shared out between the lanes with unsent rows, `batch // lanes` each
        (at least one), oldest first within a lane: a lane with new work is served on the
        next pass however long another lane's backlog is. The batch is published side by
        side (one wait for JetStream's acks, not one per row) and marked sent in one
        statement. A row whose publish failed stays unsent and is tried again next pass;
        the pass then raises, after the others were marked.
        """
        if self._sqlite:
            # SQLite has one writer at a time: holding the write lock while JetStream acks a
            # batch would hold up every report and StartJob meanwhile. Read the batch without
            # it (one jobs service per SQLite file, so no other relay takes the same rows; a
            # second would only publish repeats JetStream drops), mark it after.
            async with self._sessions() as session:
                await session.connection(execution_options={SQLITE_BEGIN: "DEFERRED"})
                lanes, share, rows = await self._take(session)
            if not rows:
                return 0, False
            outcomes = await self._publish_all(rows)
            async with self._sessions.begin() as session:
                sent, errors = await self._mark(session, rows, outcomes)
        else:
            async with self._sessions.begin() as session:
                lanes, share, rows = await self._take(session)
                if not rows:
                    return 0, False
                outcomes = await self._publish_all(rows)
                sent, errors = await self._mark(session, rows, outcomes)
        self.published += len(sent)
        if errors:
            raise RuntimeError(
                f"{len(errors)} of {len(rows)} outbox message(s) not published: {errors[0]!r}"
            ) from errors[0]
        per_lane: dict[str, int] = {}
        for r in rows:
            per_lane[r.subject] = per_lane.get(r.subject, 0) + 1
        # A lane that filled its share, or lanes left for the next pass, may hold more.
        more = len(lanes) == MAX_LANES or any(n >= share for n in per_lane.values())
        return len(sent), more

    async def _take(self, session: AsyncSession) -> tuple[list[str], int, Sequence[Row[Any]]]:
        """The lanes with unsent rows, each one's share of the batch, and the batch."""
        table = models.OutboxMessage
        lanes = await self._lanes(session)
        if not lanes:
            return [], 0, []
        share = max(1, self._batch // len(lanes))
        arms = [
            select(table.id, table.subject, table.payload)
            .where(table.sent_at.is_(None), table.subject == lane)
            .order_by(table.created_at, table.id)
            .limit(share)
            # Several relays side by side (PostgreSQL): each takes rows the others do not hold.
            .with_for_update(skip_locked=True)
            .subquery()
            for lane in lanes
        ]
        query = union_all(*(select(arm.c.id, arm.c.subject, arm.c.payload) for arm in arms))
        return lanes, share, (await session.execute(query)).all()

    async def _publish_all(self, rows: Sequence[Row[Any]]) -> list[BaseException | None]:
        return await asyncio.gather(
            *(self._publish(r.id, r.subject, r.payload) for r in rows), return_exceptions=True
        )

    async def _mark(
        self,
        session: AsyncSession,
        rows: Sequence[Row[Any]],
        outcomes: Sequence[BaseException | None],
    ) -> tuple[list[str], list[BaseException]]:
        """Count the attempt on every row and mark the published ones sent; returns the
        sent ids and the errors."""
        table = models.OutboxMessage
        sent = [r.id for r, out in zip(rows, outcomes, strict=True) if out is None]
        errors = [out for out in outcomes if out is not None]
        await session.execute(
            update(table)
            .where(table.id.in_([r.id for r in rows]))
            .values(attempts=table.attempts + 1)
        )
        if sent:
            await session.execute(
                update(table).where(table.id.in_(sent)).values(sent_at=models.utcnow())
            )
        return sent, errors

    async def _lanes(self, session: AsyncSession) -> list[str]:
        """Up to MAX_LANES subjects with unsent rows, starting after the last lane the
        previous pass served when it could not serve them all (then wrapping round)."""
        lanes = await _lanes_after(session, self._next_lane, MAX_LANES)
        if self._next_lane and len(lanes) < MAX_LANES:
            lanes += [
                lane
                for lane in await _lanes_after(session, "", MAX_LANES - len(lanes))
                if lane not in lanes
            ]
        self._next_lane = lanes[-1] if len(lanes) == MAX_LANES else ""
        return lanes

    async def _publish(self, message_id: str, subject: str, payload: bytes) -> None:
        # publish() waits for JetStream's ack and raises on an error answer, on no stream
        # for the subject and on a timeout: `sent` means stored (or dropped as a repeat of a
        # stored id). A store lost later is the reconciler's business.
        ack = await self._js.publish(
            subject, payload, headers={"Nats-Msg-Id": message_id}, timeout=10
        )
        if not ack.stream:
            raise RuntimeError(f"JetStream did not say where it stored {message_id}")

    async def oldest_unsent_age(self) -> float:
        """Seconds the oldest unsent row has waited (outbox lag); 0 when none."""
        async with self._sessions() as session:
            oldest = await session.scalar(
                select(models.OutboxMessage.created_at)
                .where(models.OutboxMessage.sent_at.is_(None))
                .order_by(models.OutboxMessage.created_at)
                .limit(1)
            )
        if oldest is None:
            return 0.0
        return max(0.0, (models.utcnow() - models.as_utc(oldest)).total_seconds())

    async def purge_sent(self) -> int:
        cutoff = models.utcnow() - self._keep_sent
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(models.OutboxMessage).where(models.OutboxMessage.sent_at < cutoff)
            )
            return int(getattr(result, "rowcount", 0) or 0)


async def _lanes_after(session: AsyncSession, after: str, most: int) -> list[str]:
    """Up to `most` distinct subjects of unsent rows greater than `after`, in order.

    A skip scan: each step seeks the next subject in the partial index ix_outbox_lanes, so
    a lane holding 100,000 rows costs one seek like a lane holding one (a plain DISTINCT
    would read them all on every pass)."""
    table = models.OutboxMessage

    def next_subject(prev: Any) -> Any:
        return (
            select(table.subject)
            .where(table.sent_at.is_(None), table.subject > prev)
            .order_by(table.subject)
            .limit(1)
            .scalar_subquery()
        )

    first = select(next_subject(literal(after)).label("subject"), literal(1).label("n"))
    lanes = first.cte("lanes", recursive=True)
    step = select(next_subject(lanes.c.subject), lanes.c.n + 1).where(
        lanes.c.subject.is_not(None), lanes.c.n < most
    )
    lanes = lanes.union_all(step)
    found = await session.scalars(
        select(lanes.c.subject).where(lanes.c.subject.is_not(None)).order_by(lanes.c.subject)
    )
    return list(found)
