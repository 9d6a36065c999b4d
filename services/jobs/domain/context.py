"""What every domain module of the jobs service shares: sessions, storage, settings, the hub.

It lives in the domain, not the store: it joins the store (sessions) with messaging (the hub
woken after each commit), and the store imports neither of the layers above it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from bytereview.core.errors import NotFound
from bytereview.core.settings import Settings
from bytereview.core.storage import Storage
from services.jobs.domain import names
from services.jobs.messaging.hub import EventHub
from services.jobs.store import models
from services.jobs.store.db import SQLITE_BEGIN, SyncReads
from services.jobs.store.errors import again_if_deadlocked

T = TypeVar("T")


class Settling:
    """What the request handlers hand to `tasks.settling.TaskSettler` in this process: jobs
    whose queued tasks still need their messages again (resume), by the position
    queued so far, and a wake-up (a cancelled job is found in the database itself)."""

    def __init__(self) -> None:
        self.requeue: dict[str, int] = {}
        self.woken = asyncio.Event()

    def requeue_after(self, job_id: str, position: int) -> None:
        self.requeue[job_id] = position
        self.woken.set()

    def wake(self) -> None:
        self.woken.set()


@dataclass(frozen=True, slots=True)
class JobsContext:
    sessions: async_sessionmaker[AsyncSession]
    storage: Storage
    settings: Settings
    hub: EventHub
    # SQLite only: the sync driver and its threads, for `read` (see db.SyncReads).
    sync_reads: SyncReads | None = None
    # PostgreSQL: reads on a pool of their own, so a read never waits for a connection
    # behind writers queued on a job's row lock (reports, task batches).
    read_sessions: async_sessionmaker[AsyncSession] | None = None
    settling: Settling = field(default_factory=Settling)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A transaction; after commit, watchers and the outbox relay are woken."""
        async with self.sessions.begin() as session:
            yield session
        await self.hub.committed(session)

    async def run_transaction(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`work(session)` as one transaction (see `transaction`), run again whole when
        PostgreSQL aborts it to break a lock cycle (store.errors.again_if_deadlocked).

        Every command and report that locks a job's row runs this way. Reports lock a
        running task's row before its job's and every other task's after it
        (tasks.reports._LOCK_ORDER), but a cycle can still close through paths that write
        task rows in another order (the queue reconciler, a begin meeting a task begun
        meanwhile), and PostgreSQL then aborts whichever transaction finds it: the caller
        gets its answer, not an INTERNAL error for a cycle it did not cause. Nothing `work`
        does may outlive an aborted try but its session's writes (rolled back): what follows
        a commit (metrics, waking the settler) is the caller's, after this returns."""

        async def once() -> T:
            async with self.transaction() as session:
                return await work(session)

        return await again_if_deadlocked(once)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only session with one snapshot; on SQLite it does not take the write lock."""
        async with self._session(sqlite_begin="DEFERRED") as session:
            yield session

    @asynccontextmanager
    async def _session(self, *, sqlite_begin: str) -> AsyncIterator[AsyncSession]:
        async with (self.read_sessions or self.sessions)() as session:
            await session.connection(execution_options={SQLITE_BEGIN: sqlite_begin})
            yield session

    async def read(self, work: Callable[[Session], T]) -> T:
        """Runs a short read-only `work(session)` written against a plain Session.

        On SQLite the whole of it runs in one thread hop on the sync driver; elsewhere it
        runs on the async session (`run_sync`), with no thread at all. Each statement sees
        its own snapshot (no BEGIN on SQLite): only for reads whose later statements cannot
        contradict earlier ones, such as a job and its fields (frozen when it starts).
        """
        sync_reads = self.sync_reads
        if sync_reads is not None:

            def run() -> T:
                with sync_reads.sessions() as session:
                    return work(session)

            call = functools.partial(contextvars.copy_context().run, run)
            return await asyncio.get_running_loop().run_in_executor(sync_reads.threads, call)
        async with self._session(sqlite_begin="STATEMENT") as session:
            return await session.run_sync(work)


def owned_job_query(user_id: str, job_id: str) -> Select[models.Job]:
    """The job if the user owns it. Another user's job is absent, never forbidden."""
    return select(models.Job).where(models.Job.id == job_id, models.Job.user_id == user_id)


async def owned_job(
    session: AsyncSession, user_id: str, job_id: str, *, lock: bool = False
) -> models.Job:
    """The job if the user owns it; another user's job is NOT_FOUND, never PERMISSION_DENIED."""
    query = owned_job_query(user_id, job_id)
    if lock:
        query = query.with_for_update()
    job = await session.scalar(query)
    if job is None:
        raise job_not_found(job_id)
    return job


def job_not_found(job_id: str) -> NotFound:
    return NotFound(f"job {names.job_name(job_id)} not found")


async def locked_job(session: AsyncSession, job_id: str) -> models.Job | None:
    return await session.scalar(select(models.Job).where(models.Job.id == job_id).with_for_update())
