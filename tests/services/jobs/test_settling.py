"""Cancel, resume and retry of big jobs (#18): the request answers at once and the tasks
follow in batches (services/jobs/domain/tasks/settling.py); a restart finishes a cancellation;
progress reads never queue behind writers waiting on a job's row lock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bytereview.core import streams
from bytereview.core.settings import Settings
from bytereview.core.storage import make_storage
from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc, worker_service_pb2_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs import RunningJobsService, jobs_service
from services.jobs.domain import (
    JobQueries,
    Jobs,
    JobsContext,
    TaskReports,
    TaskSettler,
)
from services.jobs.domain.context import locked_job
from services.jobs.domain.status import JobStatus, SettleDue, TaskStatus
from services.jobs.domain.tasks import settling
from services.jobs.messaging import EventHub
from services.jobs.store import db, models
from tests.conftest import USER
from tests.identity import IdentityProvider
from tests.services.jobs.helpers import FIELDS, WORKER, pull, pull_exactly, ready_job, tasks

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub


def _id(name: str) -> str:
    return name.split("/")[1]


async def _statuses(ctx: JobsContext, job: str) -> dict[str, int]:
    async with ctx.reading() as session:
        rows = await session.execute(
            select(models.Task.status, func.count())
            .where(models.Task.job_id == _id(job))
            .group_by(models.Task.status)
        )
        return {str(s): int(n) for s, n in rows.all()}


async def _until_settled(ctx: JobsContext, job: str, expected: dict[str, int]) -> None:
    deadline = time.monotonic() + 20
    while (got := await _statuses(ctx, job)) != expected:
        assert time.monotonic() < deadline, f"tasks of {job}: {got}, wanted {expected}"
        await asyncio.sleep(0.1)


async def _started(job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, n: int) -> str:
    job = await ready_job(job_stub, worker_stub, settings, files=n)
    await job_stub.ConfigureJob(jobs_pb.ConfigureJobRequest(name=job, fields=FIELDS), metadata=USER)
    started = await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    assert started.counters.tasks_total == n
    return job


async def _queued_names(settings: Settings, job: str, count: int) -> list[str]:
    """The task names of the extract messages of `job` pulled off the queue (others' dropped)."""
    messages = await pull(settings, streams.extract_queue(settings), count)
    names = [extract_messages.ExtractTaskMessage.FromString(m).task for m in messages]
    return [n for n in names if n.startswith(f"{job}/")]


@asynccontextmanager
async def _service(
    settings: Settings,
) -> AsyncIterator[tuple[RunningJobsService, JobStub, WorkerStub]]:
    async with (
        jobs_service(settings, migrate=False) as service,
        grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
    ):
        yield (
            service,
            jobs_service_pb2_grpc.JobServiceStub(channel),
            worker_service_pb2_grpc.JobWorkerServiceStub(channel),
        )


async def test_cancel_answers_at_once_and_every_task_ends_cancelled(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    jobs: RunningJobsService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settling, "BATCH", 4)
    job = await _started(job_stub, worker_stub, jobs.ctx.settings, 30)
    listed = await tasks(job_stub, job)
    for task in listed[-2:]:
        begun = await worker_stub.BeginTask(
            worker_pb.BeginTaskRequest(task=task.name), metadata=WORKER
        )
        assert begun.proceed
    cancelled = await job_stub.CancelJob(jobs_pb.CancelJobRequest(name=job), metadata=USER)
    assert cancelled.status == pb.Job.CANCELLED
    # Work of a cancelled job is refused, and a result coming late changes nothing.
    refused = await worker_stub.BeginTask(
        worker_pb.BeginTaskRequest(task=listed[5].name), metadata=WORKER
    )
    assert not refused.proceed
    late = await worker_stub.ReportTaskResult(
        worker_pb.ReportTaskResultRequest(task=listed[-1].name), metadata=WORKER
    )
    assert not late.applied
    await _until_settled(jobs.ctx, job, {TaskStatus.CANCELLED: 30})
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.status == pb.Job.CANCELLED
    assert got.counters.tasks_succeeded == 0
    events = await job_stub.ListJobEvents(
        jobs_pb.ListJobEventsRequest(parent=job, page_size=1000), metadata=USER
    )
    ends = [e.to_status for e in events.events if e.kind == "job.status" and e.subject == job]
    assert ends[-1] == "CANCELLED"
    assert ends.count("CANCELLED") == 1
    progress = await job_stub.GetJobProgress(jobs_pb.GetJobProgressRequest(name=job), metadata=USER)
    assert dict(progress.tasks_by_status) == {"CANCELLED": 30}


def _id_of_task(name: str) -> str:
    return name.split("/")[-1]


def _offline_context(settings: Settings) -> tuple[JobsContext, AsyncEngine]:
    """The jobs domain on the test's database with no service running (a crashed one)."""
    engine = db.create_engine(settings.database_url)
    ctx = JobsContext(
        sessions=db.session_factory(engine),
        storage=make_storage(settings),
        settings=settings,
        hub=EventHub(),
    )
    return ctx, engine


async def test_a_restarted_service_finishes_a_cancellation(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settling, "BATCH", 7)
    async with _service(settings) as (_, job_stub, worker_stub):
        job = await _started(job_stub, worker_stub, settings, 30)
        listed = await tasks(job_stub, job)
        begun = await worker_stub.BeginTask(
            worker_pb.BeginTaskRequest(task=listed[-1].name), metadata=WORKER
        )
        assert begun.proceed
    # What CancelJob commits; then the process dies before or between the settler's batches.
    ctx, engine = _offline_context(settings)
    try:
        await Jobs(ctx).cancel(user_id=await _owner(ctx, job), actor="t", job_id=_id(job))
        # Reports on the job's open tasks change nothing meanwhile (the settler alone
        # writes them): not a retry, not a dead letter.
        reports = TaskReports(ctx)
        applied, status = await reports.task_failure(
            _id(job), _id_of_task(listed[-1].name), failure_class="RETRYABLE", error="503"
        )
        assert (applied, status) == (False, TaskStatus.CANCELLED)
        assert not await reports.dead_letter_task(
            _id(job), _id_of_task(listed[-2].name), error="dead"
        )
        assert await _statuses(ctx, job) == {TaskStatus.QUEUED: 29, TaskStatus.RUNNING: 1}
        # One batch, then the crash.
        assert await TaskSettler(ctx).cancel_some() == 7
        after_one = await _statuses(ctx, job)
        assert after_one[TaskStatus.CANCELLED] == 7
        assert sum(after_one.values()) == 30
    finally:
        await engine.dispose()
    async with _service(settings) as (service, job_stub, _):
        await _until_settled(service.ctx, job, {TaskStatus.CANCELLED: 30})
        got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
        assert got.status == pb.Job.CANCELLED
        assert got.counters.tasks_failed == 0


async def test_resume_queues_the_held_tasks_in_batches(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    jobs: RunningJobsService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settling, "BATCH", 4)
    settings = jobs.ctx.settings
    job = await _started(job_stub, worker_stub, settings, 10)
    first = await _queued_names(settings, job, 10)
    assert len(first) == 10
    await job_stub.PauseJob(jobs_pb.PauseJobRequest(name=job), metadata=USER)
    resumed = await job_stub.ResumeJob(jobs_pb.ResumeJobRequest(name=job), metadata=USER)
    assert resumed.status == pb.Job.QUEUED
    # Four in the request, the rest by the settler: every task once, under a new message id.
    again = await _queued_names(settings, job, 10)
    assert sorted(again) == sorted(first)
    async with jobs.ctx.reading() as session:
        generations = (
            await session.scalars(
                select(models.Task.generation).where(models.Task.job_id == _id(job))
            )
        ).all()
    assert sorted(generations) == [1] * 10
    # The hand-off is dropped once a batch comes back short.
    for _ in range(50):
        if not jobs.ctx.settling.requeue:
            break
        await asyncio.sleep(0.05)
    assert not jobs.ctx.settling.requeue


async def _failed_job(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, n: int
) -> str:
    """A started job of `n` tasks, each failed for good through the worker API: FAILED."""
    job = await _started(job_stub, worker_stub, settings, n)
    failure = worker_pb.ReportTaskFailureRequest.FailureClass
    for task in await tasks(job_stub, job):
        await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task.name), metadata=WORKER)
        await worker_stub.ReportTaskFailure(
            worker_pb.ReportTaskFailureRequest(
                task=task.name, failure_class=failure.PERMANENT, error="unreadable"
            ),
            metadata=WORKER,
        )
    failed = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert failed.status == pb.Job.FAILED
    return job


async def _settle_due(ctx: JobsContext, job: str) -> str:
    async with ctx.reading() as session:
        row = await session.get(models.Job, _id(job))
        assert row is not None
        return row.settle_due


async def _generations(ctx: JobsContext, job: str) -> list[int]:
    async with ctx.reading() as session:
        found = await session.scalars(
            select(models.Task.generation).where(models.Task.job_id == _id(job))
        )
        return sorted(found.all())


async def test_retry_answers_at_once_and_queues_the_failed_tasks_in_batches(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    jobs: RunningJobsService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settling, "BATCH", 3)
    settings = jobs.ctx.settings
    job = await _started(job_stub, worker_stub, settings, 8)
    assert len(await _queued_names(settings, job, 8)) == 8
    failure = worker_pb.ReportTaskFailureRequest.FailureClass
    for task in await tasks(job_stub, job):
        await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task.name), metadata=WORKER)
        await worker_stub.ReportTaskFailure(
            worker_pb.ReportTaskFailureRequest(
                task=task.name, failure_class=failure.PERMANENT, error="unreadable"
            ),
            metadata=WORKER,
        )
    retried = await job_stub.RetryFailedTasks(
        jobs_pb.RetryFailedTasksRequest(name=job), metadata=USER
    )
    assert retried.status == pb.Job.QUEUED
    # The request re-opened one batch; the settler does the rest, and the counter follows.
    assert retried.counters.tasks_failed == 5
    await _until_settled(jobs.ctx, job, {TaskStatus.QUEUED: 8})
    again = await _queued_names(settings, job, 8)
    assert sorted(again) == sorted(t.name for t in await tasks(job_stub, job))
    async with jobs.ctx.reading() as session:
        attempts = (
            await session.scalars(
                select(models.Task.attempts).where(models.Task.job_id == _id(job))
            )
        ).all()
    assert list(attempts) == [0] * 8
    assert await _generations(jobs.ctx, job) == [1] * 8  # a new message id each
    assert await _settle_due(jobs.ctx, job) == ""
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.counters.tasks_failed == 0
    # Nothing left to retry: refused, and the job is not re-opened.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await job_stub.RetryFailedTasks(jobs_pb.RetryFailedTasksRequest(name=job), metadata=USER)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_retried_job_does_not_finish_before_its_last_batch(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settling, "BATCH", 3)
    async with _service(settings) as (_, job_stub, worker_stub):
        job = await _failed_job(job_stub, worker_stub, settings, 7)
    # The service is gone (no settler runs): the request's part, by the domain itself.
    ctx, engine = _offline_context(settings)
    try:
        retried = await Jobs(ctx).retry_failed(
            user_id=await _owner(ctx, job), actor="t", job_id=_id(job)
        )
        assert retried.status == JobStatus.QUEUED
        assert await _statuses(ctx, job) == {TaskStatus.QUEUED: 3, TaskStatus.FAILED: 4}
        # Progress takes FAILED from the job's counter, which each batch lowers with them.
        progress = await JobQueries(ctx).progress(await _owner(ctx, job), _id(job))
        assert dict(progress.tasks_by_status) == await _statuses(ctx, job)
        # Every task re-opened so far succeeds: the job still has failed tasks to retry.
        reports = TaskReports(ctx)
        async with ctx.reading() as session:
            reopened = (
                await session.scalars(
                    select(models.Task.id).where(
                        models.Task.job_id == _id(job), models.Task.status == TaskStatus.QUEUED
                    )
                )
            ).all()
        for task_id in reopened:
            await reports.begin_task(_id(job), task_id)
            assert await reports.task_result(
                _id(job),
                task_id,
                values={"invoice_number": "A-1"},
                value_sources={},
                input_tokens=0,
                output_tokens=0,
                extractor="test",
            ) == (True, "", False)
        async with ctx.reading() as session:
            row = await session.get(models.Job, _id(job))
            assert row is not None
            assert (row.status, row.settle_due) == (JobStatus.RUNNING, "retry")
        settler = TaskSettler(ctx)
        assert await settler.retry_some() == 3
        # The last batch is short: it clears the mark; the job ends when its tasks do.
        assert await settler.retry_some() == 1
        assert await settler.retry_some() == 0
        assert await _settle_due(ctx, job) == ""
        assert await _statuses(ctx, job) == {TaskStatus.SUCCEEDED: 3, TaskStatus.QUEUED: 4}
    finally:
        await engine.dispose()


async def test_a_restarted_service_finishes_a_retry(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settling, "BATCH", 4)
    async with _service(settings) as (_, job_stub, worker_stub):
        job = await _failed_job(job_stub, worker_stub, settings, 10)
        await _queued_names(settings, job, 10)  # the first run's messages, consumed
    ctx, engine = _offline_context(settings)
    try:
        await Jobs(ctx).retry_failed(user_id=await _owner(ctx, job), actor="t", job_id=_id(job))
        # One more batch, then the crash.
        assert await TaskSettler(ctx).retry_some() == 4
        assert await _statuses(ctx, job) == {TaskStatus.QUEUED: 8, TaskStatus.FAILED: 2}
    finally:
        await engine.dispose()
    async with _service(settings) as (service, job_stub, _):
        await _until_settled(service.ctx, job, {TaskStatus.QUEUED: 10})
        # Every task's new message once: those of the batches before the crash, published
        # from the outbox, and the settler's after it.
        again = [
            extract_messages.ExtractTaskMessage.FromString(m).task
            for m in await pull_exactly(settings, streams.extract_queue(settings), 10)
        ]
        assert sorted(again) == sorted(t.name for t in await tasks(job_stub, job))
        assert await _settle_due(service.ctx, job) == ""
        got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
        assert (got.status, got.counters.tasks_failed) == (pb.Job.QUEUED, 0)


async def test_retry_is_scoped_to_the_callers_job(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    jobs: RunningJobsService,
    idp: IdentityProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settling, "BATCH", 2)
    settings = jobs.ctx.settings
    mine = await _failed_job(job_stub, worker_stub, settings, 5)
    kept = await _failed_job(job_stub, worker_stub, settings, 3)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.RetryFailedTasks(
            jobs_pb.RetryFailedTasksRequest(name=mine), metadata=idp.metadata("mallory")
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert await _settle_due(jobs.ctx, mine) == ""
    assert await _statuses(jobs.ctx, mine) == {TaskStatus.FAILED: 5}
    await job_stub.RetryFailedTasks(jobs_pb.RetryFailedTasksRequest(name=mine), metadata=USER)
    await _until_settled(jobs.ctx, mine, {TaskStatus.QUEUED: 5})
    # The settler's batches re-opened the retried job's tasks only.
    assert await _statuses(jobs.ctx, kept) == {TaskStatus.FAILED: 3}
    assert await _generations(jobs.ctx, kept) == [0] * 3


async def test_cancel_during_a_retry_leaves_the_rest_failed_and_clears_its_mark(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settling, "BATCH", 3)
    async with _service(settings) as (_, job_stub, worker_stub):
        job = await _failed_job(job_stub, worker_stub, settings, 8)
    ctx, engine = _offline_context(settings)
    try:
        owner = await _owner(ctx, job)
        await Jobs(ctx).retry_failed(user_id=owner, actor="t", job_id=_id(job))
        await Jobs(ctx).cancel(user_id=owner, actor="t", job_id=_id(job))
        assert await _settle_due(ctx, job) == "cancel"
        settler = TaskSettler(ctx)
        assert await settler.retry_some() == 0  # the retry gave way
        assert await settler.cancel_some() == 3  # the tasks it had re-opened
        # A full batch may have more behind it; the next, empty one clears the mark.
        assert await _settle_due(ctx, job) == "cancel"
        assert await settler.cancel_some() == 0
        assert await _settle_due(ctx, job) == ""
        assert await _statuses(ctx, job) == {TaskStatus.CANCELLED: 3, TaskStatus.FAILED: 5}
    finally:
        await engine.dispose()


async def test_a_settled_cancellation_is_never_looked_at_again(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    jobs: RunningJobsService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settling, "BATCH", 4)
    job = await _started(job_stub, worker_stub, jobs.ctx.settings, 10)
    await job_stub.CancelJob(jobs_pb.CancelJobRequest(name=job), metadata=USER)
    await _until_settled(jobs.ctx, job, {TaskStatus.CANCELLED: 10})
    deadline = time.monotonic() + 20
    while await _settle_due(jobs.ctx, job) != "":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    # Only marked jobs are read: a kept cancelled job costs the settler nothing.
    settler = TaskSettler(jobs.ctx)
    assert await settler._marked(SettleDue.CANCEL) == []
    assert await settler.cancel_some() == 0


async def _owner(ctx: JobsContext, job: str) -> str:
    async with ctx.reading() as session:
        row = await session.get(models.Job, _id(job))
        assert row is not None
        return row.user_id


# PostgreSQL only: SQLite has no row locks, and its reads never wait for the writer.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.settings(database_pool_size=2)
async def test_progress_reads_do_not_queue_behind_a_locked_job(
    job_stub: JobStub, worker_stub: WorkerStub, jobs: RunningJobsService
) -> None:
    job = await _started(job_stub, worker_stub, jobs.ctx.settings, 3)
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold_lock() -> None:
        async with jobs.ctx.transaction() as session:
            await locked_job(session, _id(job))
            holding.set()
            await release.wait()

    async def wait_for_lock() -> None:
        async with jobs.ctx.transaction() as session:
            await locked_job(session, _id(job))

    holder = asyncio.create_task(hold_lock())
    await holding.wait()
    # Every other connection of the writers' pool (2 + 2 overflow) waits on the job's lock.
    waiters = [asyncio.create_task(wait_for_lock()) for _ in range(3)]
    await asyncio.sleep(0.3)
    try:
        # Answered while the lock is held: a read queued behind it would wait for the
        # release, which comes only after this (no timed bound: CI run 47 took 1.7 s under a
        # load of 8, where a bound of 1 s failed).
        progress = await asyncio.wait_for(
            job_stub.GetJobProgress(jobs_pb.GetJobProgressRequest(name=job), metadata=USER),
            timeout=10,
        )
        assert not release.is_set()
        assert dict(progress.tasks_by_status) == {"QUEUED": 3}
    finally:
        release.set()
        await asyncio.gather(holder, *waiters)
