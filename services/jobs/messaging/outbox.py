"""The transactional outbox relay: publishes committed outbox rows to JetStream.

Rows are written in the same transaction as the state change that needs the
message. The relay publishes each with `Nats-Msg-Id` = row id and marks it sent.
If it dies between publish and mark, the row is published again and JetStream's
duplicate window drops the repeat, so every message arrives once. On PostgreSQL,
`FOR UPDATE SKIP LOCKED` lets several jobs replicas relay side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence

from google.protobuf.message import Message
from nats.js import JetStreamContext
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.jobs.messaging.hub import OUTBOX
from services.jobs.store import models

log = logging.getLogger(__name__)


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
        self.published = 0

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                sent = await self.relay_once()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                sent = 0
            if sent >= self._batch:
                continue  # more are waiting
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wakeup.wait()

    async def relay_once(self) -> int:
        """Publish one batch of unsent rows; returns how many were sent.

        The batch is published side by side (one wait for JetStream's acks, not one per
        row) and marked sent in one statement. A row whose publish failed stays unsent and
        is tried again next pass; the pass then raises, after the others were marked.
        """
        table = models.OutboxMessage
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(
                    select(table.id, table.subject, table.payload)
                    .where(table.sent_at.is_(None))
                    .order_by(table.created_at)
                    .limit(self._batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            outcomes = await asyncio.gather(
                *(self._publish(r.id, r.subject, r.payload) for r in rows),
                return_exceptions=True,
            )
            sent = [r.id for r, out in zip(rows, outcomes, strict=True) if out is None]
            errors = [out for out in outcomes if isinstance(out, BaseException)]
            await session.execute(
                update(table)
                .where(table.id.in_([r.id for r in rows]))
                .values(attempts=table.attempts + 1)
            )
            if sent:
                await session.execute(
                    update(table).where(table.id.in_(sent)).values(sent_at=models.utcnow())
                )
        self.published += len(sent)
        if errors:
            raise RuntimeError(
                f"{len(errors)} of {len(rows)} outbox message(s) not published: {errors[0]!r}"
            ) from errors[0]
        return len(sent)

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
