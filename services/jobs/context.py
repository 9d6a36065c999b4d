"""What every domain module of the jobs service shares: sessions, storage, settings, the hub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bytereview.core.errors import NotFound
from bytereview.core.settings import Settings
from bytereview.core.storage import Storage
from bytereview.services.jobs import models
from bytereview.services.jobs.db import SQLITE_BEGIN
from bytereview.services.jobs.events import EventHub


@dataclass(frozen=True, slots=True)
class JobsContext:
    sessions: async_sessionmaker[AsyncSession]
    storage: Storage
    settings: Settings
    hub: EventHub

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A transaction; after commit, watchers and the outbox relay are woken."""
        async with self.sessions.begin() as session:
            yield session
        await self.hub.committed(session)

    @asynccontextmanager
    async def reading(self, *, snapshot: bool = True) -> AsyncIterator[AsyncSession]:
        """A read-only session; on SQLite it does not take the write lock.

        `snapshot=False` lets each statement see its own snapshot (on SQLite: no BEGIN,
        one driver round trip less). Only for reads whose later statements cannot
        contradict earlier ones, such as a job and its fields (frozen when it starts).
        """
        mode = "DEFERRED" if snapshot else "STATEMENT"
        async with self.sessions() as session:
            await session.connection(execution_options={SQLITE_BEGIN: mode})
            yield session


async def owned_job(
    session: AsyncSession, user_id: str, job_id: str, *, lock: bool = False
) -> models.Job:
    """The job if the user owns it; another user's job is NOT_FOUND, never PERMISSION_DENIED."""
    query = select(models.Job).where(models.Job.id == job_id, models.Job.user_id == user_id)
    if lock:
        query = query.with_for_update()
    job = await session.scalar(query)
    if job is None:
        raise NotFound(f"job jobs/{job_id} not found")
    return job


async def locked_job(session: AsyncSession, job_id: str) -> models.Job | None:
    return await session.scalar(select(models.Job).where(models.Job.id == job_id).with_for_update())
