"""BeginTasks and ReportTaskResults (#18): many tasks per call and per transaction, each as
idempotent as its single-task RPC, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import struct_pb2
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bytereview.core.limits import MAX_TASKS_PER_BATCH
from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs.store import db, models
from tests.conftest import USER
from tests.services.jobs.helpers import WORKER, lock_waiter, ready_job, running_tasks, started_tasks

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

FIELD = [pb.JobField(name="t", data_type="text")]


def result(task: str) -> worker_pb.ReportTaskResultRequest:
    values = struct_pb2.Struct()
    values.update({"t": task})
    return worker_pb.ReportTaskResultRequest(task=task, values=values, extractor="test")


async def begin(worker_stub: WorkerStub, tasks: list[str]) -> list[worker_pb.BeginTaskResponse]:
    got = await worker_stub.BeginTasks(
        worker_pb.BeginTasksRequest(tasks=[worker_pb.BeginTaskRequest(task=t) for t in tasks]),
        metadata=WORKER,
    )
    return list(got.tasks)


async def report(worker_stub: WorkerStub, tasks: list[str]) -> list[bool]:
    got = await worker_stub.ReportTaskResults(
        worker_pb.ReportTaskResultsRequest(results=[result(t) for t in tasks]), metadata=WORKER
    )
    return [r.applied for r in got.results]


async def events(job_stub: JobStub, job: str) -> list[pb.JobEvent]:
    got = await job_stub.ListJobEvents(
        jobs_pb.ListJobEventsRequest(parent=job, page_size=500), metadata=USER
    )
    return list(got.events)


async def test_a_batch_begins_and_reports_many_tasks_once_each(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=6)
    tasks = await started_tasks(job_stub, settings, job, FIELD, 6)
    before = len(await events(job_stub, job))

    begun = await begin(worker_stub, tasks)
    assert [b.proceed for b in begun] == [True] * 6
    # In request order, each with its own file and the job's fields.
    assert [b.task.name for b in begun] == tasks
    assert len({b.files[0].name for b in begun}) == 6
    assert all([f.name for f in b.fields] == ["t"] for b in begun)

    # A repeated report in the same batch and a repeat of the whole batch apply once.
    assert await report(worker_stub, [*tasks[:4], tasks[0]]) == [True] * 4 + [False]
    assert await report(worker_stub, tasks[:4]) == [False] * 4
    assert await report(worker_stub, tasks[4:]) == [True, True]

    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.status == pb.Job.COMPLETED
    assert got.counters.tasks_succeeded == 6
    listed = await job_stub.ListResults(
        jobs_pb.ListResultsRequest(parent=job, page_size=100), metadata=USER
    )
    assert sorted(str(r.values["t"]) for r in listed.results) == sorted(tasks)

    # Each batch is one progress event, not one per task; the job's own moves stay.
    trail = (await events(job_stub, job))[before:]
    progress = [(e.kind, e.to_status, e.message) for e in trail if e.kind == "tasks.progress"]
    assert progress == [
        ("tasks.progress", "RUNNING", "6 task(s) started"),
        ("tasks.progress", "SUCCEEDED", "4 task(s) succeeded; 4 of 6 done"),
        ("tasks.progress", "SUCCEEDED", "2 task(s) succeeded; 6 of 6 done"),
    ]
    assert not [e for e in trail if e.kind == "task.status"]
    assert [e.to_status for e in trail if e.kind == "job.status"] == ["RUNNING", "COMPLETED"]
    sequences = [e.sequence for e in trail]
    assert sequences == sorted(set(sequences))

    # Settled tasks begun again (a redelivery) do not run.
    again = await begin(worker_stub, tasks[:2])
    assert [(b.proceed, b.reason) for b in again] == [(False, "task is SUCCEEDED")] * 2


async def test_a_redelivered_running_task_runs_again_and_counts_once(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    """A worker killed mid-batch: the tasks it began are RUNNING; their messages come back,
    are begun again (attempt 2) and their results count once."""
    job = await ready_job(job_stub, worker_stub, settings, files=3)
    tasks = await started_tasks(job_stub, settings, job, FIELD, 3)
    await begin(worker_stub, tasks)
    assert await report(worker_stub, tasks[:1]) == [True]  # then the worker died

    again = await begin(worker_stub, tasks)
    assert [b.proceed for b in again] == [False, True, True]
    assert [b.task.attempts for b in again[1:]] == [2, 2]
    assert await report(worker_stub, tasks) == [False, True, True]
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert (got.status, got.counters.tasks_succeeded) == (pb.Job.COMPLETED, 3)


async def test_missing_or_malformed_tasks_do_not_fail_the_batch(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=1)
    [task] = await started_tasks(job_stub, settings, job, FIELD, 1)
    missing = f"{job}/tasks/{'0' * 32}"
    begun = await begin(worker_stub, [missing, "not a task", task])
    assert [b.proceed for b in begun] == [False, False, True]
    assert "not found" in begun[0].reason
    assert begun[1].reason
    assert await report(worker_stub, [missing, "not a task", task]) == [False, False, True]


async def test_batches_from_many_workers_at_once_all_land(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=12)
    tasks = await started_tasks(job_stub, settings, job, FIELD, 12)
    chunks = [tasks[i : i + 3] for i in range(0, 12, 3)]

    async def work(chunk: list[str]) -> None:
        assert all(b.proceed for b in await begin(worker_stub, chunk))
        assert await report(worker_stub, chunk) == [True] * len(chunk)

    await asyncio.gather(*(work(c) for c in chunks))
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert (got.status, got.counters.tasks_succeeded) == (pb.Job.COMPLETED, 12)


async def test_a_batch_over_the_limit_is_invalid_argument(worker_stub: WorkerStub) -> None:
    tasks = [f"jobs/{'a' * 32}/tasks/{i:032d}" for i in range(MAX_TASKS_PER_BATCH + 1)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await begin(worker_stub, tasks)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await report(worker_stub, tasks)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_begins_of_a_running_job_do_not_wait_for_its_row_lock(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, database_url: str
) -> None:
    """Every begin and report of a job used to queue for the job's one row lock; once the
    job runs, a begin batch locks only its tasks' rows. Here another transaction holds the
    job's row (as a report batch does) and a begin still goes through."""
    job = await ready_job(job_stub, worker_stub, settings, files=4)
    tasks = await started_tasks(job_stub, settings, job, FIELD, 4)
    assert [b.proceed for b in await begin(worker_stub, tasks[:1])] == [True]  # job RUNNING
    job_row = select(models.Job.id).where(models.Job.id == job.split("/")[1])
    async with _holding(database_url, job_row.with_for_update()), asyncio.timeout(10):
        begun = await begin(worker_stub, tasks[1:])
    assert [b.proceed for b in begun] == [True] * 3
    # Their results still apply and finish the job, with its counters right.
    assert await report(worker_stub, tasks) == [True] * 4
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.status == pb.Job.COMPLETED
    assert got.counters.tasks_succeeded == 4


@contextlib.asynccontextmanager
async def _holding(database_url: str, row: Select[Any]) -> AsyncIterator[AsyncEngine]:
    """Another transaction holding `row`'s lock for the block; yields an engine to look at
    the database with meanwhile."""
    engine = db.create_engine(database_url)
    try:
        async with engine.begin() as holder:
            await holder.execute(row)
            yield engine
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_report_batch_locks_the_jobs_row_only_after_its_writes(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, database_url: str
) -> None:
    """Report batches used to lock the job's row first and hold it through their writes, so
    the batches of every worker queued behind one another. Here another transaction holds
    the job's row as another batch does (FOR NO KEY UPDATE): the batch writes its rows and
    gets as far as that lock, its last step, and applies once the row is free."""
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELD, 3)
    job_row = select(models.Job.id).where(models.Job.id == job.split("/")[1])
    async with _holding(database_url, job_row.with_for_update(key_share=True)) as engine:
        reporting = asyncio.create_task(report(worker_stub, tasks))
        waiting = await lock_waiter(engine, "%FROM extraction_jobs%")
        assert "FOR NO KEY UPDATE" in waiting
        assert not reporting.done()
    assert await reporting == [True] * 3
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert (got.status, got.counters.tasks_succeeded) == (pb.Job.COMPLETED, 3)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_job_cancelled_while_its_report_batch_runs_takes_no_result(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, database_url: str
) -> None:
    """The batch reads its job without a lock; if the job is cancelled before the batch
    locks its row, the batch runs again with the row locked first, and a cancelled job's
    reports change nothing. The batch is held on one of its tasks' rows (after its first
    read of the job) while CancelJob commits."""
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELD, 2)
    task_row = select(models.Task.id).where(models.Task.id == tasks[0].rsplit("/", 1)[1])
    async with _holding(database_url, task_row.with_for_update()) as engine:
        reporting = asyncio.create_task(report(worker_stub, tasks))
        await lock_waiter(engine, "%FROM extraction_tasks%FOR UPDATE%")
        await job_stub.CancelJob(jobs_pb.CancelJobRequest(name=job), metadata=USER)
    assert await reporting == [False, False]
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert (got.status, got.counters.tasks_succeeded) == (pb.Job.CANCELLED, 0)
    listed = await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    assert not listed.results
