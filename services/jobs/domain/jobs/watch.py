"""Watching a job: where it stands, its events after a point, then new ones as they happen,
until it is final.

Every watch starts with a snapshot: a `job.snapshot` event (never stored in the trail) with
the job's status and counters as they are now, so a client joining a running or finished job
sees its state at once instead of waiting for the next change. Its `sequence` is where the
stream resumes: every event after it has a larger one, and resuming from any sequence the
client saw (the snapshot's included) loses and repeats nothing.

While the job runs, a `job.held` message (never stored either, numbered like the snapshot
with the stream's resume point) says, whenever it changes, what the extract workers holding
tasks wait for, told for the user (`held_tasks.told_to_users`; its `message`, one line per
reason, empty once nothing waits): a job whose tasks wait out the model's outage makes no
events, and its user would otherwise see it stand still without a word.

Events are read from the database. The hub wakes the watcher when the job changes (on any
replica); a slow poll covers a lost wake-up.

The credential that opened the watch is checked again while it is open (`still_allowed`,
before a read of the job once WATCH_POLL_SECONDS have passed since the last check): a
revoked API key or an expired token ends the stream (UNAUTHENTICATED) within a poll
interval, as it fails every new call, instead of following the job for as long as it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from sqlalchemy import select

from bytereview.core.errors import InvalidArgument, ResourceExhausted
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext, owned_job
from services.jobs.domain.events import SYSTEM_ACTOR
from services.jobs.domain.status import JOB_FINAL, JobStatus
from services.jobs.store import models

# The kind of a watch's first message (see the module docstring).
SNAPSHOT_KIND = "job.snapshot"
# The kind of the message saying what held tasks wait for (see the module docstring).
HELD_KIND = "job.held"
WATCH_POLL_SECONDS = 2.0
# Events read per query while catching up.
BATCH = 500
# Each open watch polls the database; one user may hold this many at once (per replica).
MAX_WATCHERS_PER_USER = 16
_watching: dict[str, int] = {}


@contextlib.contextmanager
def watcher_slot(user_id: str) -> Iterator[None]:
    """One of the user's watch slots for as long as the watch is open; RESOURCE_EXHAUSTED
    (HTTP 429) beyond MAX_WATCHERS_PER_USER."""
    if _watching.get(user_id, 0) >= MAX_WATCHERS_PER_USER:
        raise ResourceExhausted(
            f"at most {MAX_WATCHERS_PER_USER} watches may be open at once; close one first"
        )
    _watching[user_id] = _watching.get(user_id, 0) + 1
    try:
        yield
    finally:
        _watching[user_id] -= 1
        if not _watching[user_id]:
            del _watching[user_id]


async def watch_job(
    ctx: JobsContext,
    user_id: str,
    job_id: str,
    *,
    after_sequence: int,
    held: Callable[[], list[str]] = lambda: [],
    still_allowed: Callable[[], Awaitable[object]] | None = None,
) -> AsyncIterator[tuple[models.JobEvent, models.Job]]:
    """(event, the job as read with it): first the job's snapshot, then each event after
    `after_sequence` (0: from now), in order, ending once the job is final and every event
    was sent; `job.held` messages in between, from `held` (what held tasks wait for, told
    for the user). `still_allowed` raises (Unauthenticated) once the caller's credential no
    longer holds; the stream ends with its error."""
    if after_sequence < 0:
        raise InvalidArgument("after_sequence must not be negative")
    job = await _job(ctx, user_id, job_id)
    # A resume point past the job's last event (forged, or from before a restore) is its
    # last event: no client saw events that do not exist yet, and numbering the stream from
    # it skipped every event up to it.
    last = min(after_sequence, job.event_sequence) if after_sequence else job.event_sequence
    with watcher_slot(user_id):
        yield snapshot(job, last), job
        async for item in _follow(ctx, user_id, job_id, last, held, still_allowed):
            yield item


def snapshot(job: models.Job, sequence: int) -> models.JobEvent:
    """The job as it stands, as an event numbered `sequence` (the stream's resume point).

    Built, never stored: it is a reading of the job, not something that happened to it. The
    status and counters travel with it like with every watched event (api.convert.event);
    `to_status` repeats the status for readers of the raw stream."""
    return _reading(job, sequence, SNAPSHOT_KIND, "")


def held_message(job: models.Job, sequence: int, told: list[str]) -> models.JobEvent:
    """What the job's held tasks wait for (`told`, one line each; none: nothing waits), as
    a message numbered `sequence`. Built, never stored, as the snapshot."""
    return _reading(job, sequence, HELD_KIND, "\n".join(told))


def _reading(job: models.Job, sequence: int, kind: str, message: str) -> models.JobEvent:
    """A message of the stream that reads the job now rather than tells its trail."""
    return models.JobEvent(
        job_id=job.id,
        sequence=sequence,
        kind=kind,
        actor=SYSTEM_ACTOR,
        subject=names.job_name(job.id),
        from_status="",
        to_status=job.status,
        message=message,
        # When it was read: the state holds from the last event until at least then.
        created_at=models.utcnow(),
    )


async def _follow(
    ctx: JobsContext,
    user_id: str,
    job_id: str,
    last: int,
    held: Callable[[], list[str]],
    still_allowed: Callable[[], Awaitable[object]] | None,
) -> AsyncIterator[tuple[models.JobEvent, models.Job]]:
    wake = ctx.hub.subscribe(job_id)
    told: list[str] = []  # what the stream said last: nothing, at its start
    checked = time.monotonic()  # the call's own check, as it started
    try:
        while True:
            wake.clear()
            if still_allowed is not None and time.monotonic() - checked >= WATCH_POLL_SECONDS:
                # Before anything more is read for the caller, once a poll interval: a busy
                # job wakes its watchers at every commit, and an API key's check is a read.
                await still_allowed()
                checked = time.monotonic()
            job = await _job(ctx, user_id, job_id)
            if job.event_sequence > last:
                # Only events the job's row read includes: each goes out with the status and
                # counters of its own commit or a later one, never an earlier one (a job's
                # last event, COMPLETED, came with the counters of the batch before it).
                for row in await _events_after(ctx, job_id, last, job.event_sequence):
                    yield row, job
                    last = row.sequence
                continue
            if job.status in JOB_FINAL:
                return
            # Read at each wake-up and poll (the workers' heartbeats come every 2 s), said
            # only when it changes.
            now = held() if job.status == JobStatus.RUNNING else []
            if now != told:
                told = now
                yield held_message(job, last, told), job
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WATCH_POLL_SECONDS):
                    await wake.wait()
    finally:
        ctx.hub.unsubscribe(job_id, wake)


async def _job(ctx: JobsContext, user_id: str, job_id: str) -> models.Job:
    async with ctx.reading() as session:
        return await owned_job(session, user_id, job_id)


async def _events_after(
    ctx: JobsContext, job_id: str, last: int, upto: int
) -> list[models.JobEvent]:
    async with ctx.reading() as session:
        return list(
            (
                await session.scalars(
                    select(models.JobEvent)
                    .where(
                        models.JobEvent.job_id == job_id,
                        models.JobEvent.sequence > last,
                        models.JobEvent.sequence <= upto,
                    )
                    .order_by(models.JobEvent.sequence)
                    .limit(BATCH)
                )
            ).all()
        )
