"""Lock cycles between the jobs service's transactions on PostgreSQL, forced one at a time.

Each test holds rows from another connection, as a report, a command or the queue
reconciler holds them, and closes a cycle through the transaction under test; the holder
looks for cycles only after 60 s, so PostgreSQL aborts the transaction under test (after
its deadlock_timeout, 2 s here). That transaction must run again once the holder is through
(JobsContext.run_transaction), and its caller get its answer, not INTERNAL; or it must
follow the lock order (tasks.reports._LOCK_ORDER) so that no cycle closes at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, TypeVar

import grpc
import pytest
from google.protobuf import struct_pb2
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs.server import RunningJobsService
from services.jobs.store import db
from tests.conftest import USER
from tests.services.jobs.helpers import (
    PDF,
    WORKER,
    files,
    finalized_job,
    lock_waiter,
    ready_job,
    running_tasks,
    started_tasks,
)

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

FIELD = [pb.JobField(name="t", data_type="text")]
Failure = worker_pb.ReportTaskFailureRequest.FailureClass
TASK_ROW = "SELECT id FROM extraction_tasks WHERE id = :id FOR UPDATE"
JOB_ROW = "SELECT id FROM extraction_jobs WHERE id = :id FOR NO KEY UPDATE"
T = TypeVar("T")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test's database, for the holders and to look at the waits."""
    engine = db.create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
async def deadlock_checks_after_the_cycle_closes(database_url: str) -> None:
    """PostgreSQL looks for a cycle once per wait, deadlock_timeout after it began. The
    transaction under test must look after the holder's request closed the cycle: at the
    suite server's 100 ms it once looked before (a loaded machine), found none, and the
    holder was the one aborted, 10 s later. 2 s for the jobs service's connections (opened
    after this, by the `jobs` fixture), 60 s for the holder's (`holding`)."""
    engine = db.create_engine(database_url)
    try:
        async with engine.begin() as conn:
            name = await conn.scalar(text("SELECT current_database()"))
            await conn.execute(text(f"ALTER DATABASE \"{name}\" SET deadlock_timeout = '2s'"))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def holding(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that is never the one PostgreSQL aborts in a cycle; committed after
    the block."""
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL deadlock_timeout = '60s'"))
        yield conn


async def hold(conn: AsyncConnection, statement: str, row_id: str) -> None:
    await conn.execute(text(statement), {"id": row_id})


async def _awaited(call: Awaitable[T]) -> T:
    """A gRPC call as a coroutine, for asyncio.create_task."""
    return await call


def _id(name: str) -> str:
    return name.rsplit("/", 1)[1]


async def _fail(
    worker_stub: WorkerStub, tasks: list[str], failure: Failure.ValueType = Failure.PERMANENT
) -> list[tuple[bool, int]]:
    got = await worker_stub.ReportTaskFailures(
        worker_pb.ReportTaskFailuresRequest(
            failures=[
                worker_pb.ReportTaskFailureRequest(task=t, failure_class=failure, error="boom")
                for t in tasks
            ]
        ),
        metadata=WORKER,
    )
    return [(f.applied, f.status) for f in got.failures]


async def _begin(worker_stub: WorkerStub, tasks: list[str]) -> list[bool]:
    got = await worker_stub.BeginTasks(
        worker_pb.BeginTasksRequest(tasks=[worker_pb.BeginTaskRequest(task=t) for t in tasks]),
        metadata=WORKER,
    )
    return [b.proceed for b in got.tasks]


async def _job(job_stub: JobStub, job: str) -> pb.Job:
    return await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)


async def test_a_delete_aborted_in_a_lock_cycle_runs_again(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """DeleteJob locks the job's row, then deletes its tasks with it (ON DELETE CASCADE);
    a report holds a running task's row and then needs the job's. The holder does what the
    report does: DeleteJob waits for the task, the holder for the job. PostgreSQL aborts
    DeleteJob, which runs again once the report is through: the job is deleted and the
    user never sees INTERNAL for a cycle a worker's report made."""
    job, [task] = await running_tasks(job_stub, worker_stub, settings, FIELD, 1)
    async with holding(engine) as report:
        await hold(report, TASK_ROW, _id(task))
        deleting = asyncio.create_task(
            _awaited(job_stub.DeleteJob(jobs_pb.DeleteJobRequest(name=job), metadata=USER))
        )
        await lock_waiter(engine, "%DELETE FROM extraction_jobs%")
        await hold(report, JOB_ROW, _id(job))  # once DeleteJob's try is aborted
    await deleting
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await _job(job_stub, job)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_resume_aborted_in_a_lock_cycle_runs_again(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """ResumeJob locks the job's row, then writes its queued tasks (their messages again).
    The queue reconciler writes queued and running tasks without their job's row, and a
    report holds a running task's row and then needs the job's: ResumeJob waits for the
    reconciler's queued task, the reconciler for the report's running one, the report for
    the job. PostgreSQL aborts ResumeJob, which runs again: the job runs, not INTERNAL."""
    job, [queued, running] = await running_tasks(job_stub, worker_stub, settings, FIELD, 2)
    assert await _fail(worker_stub, [queued], Failure.RETRYABLE) == [(True, pb.Task.QUEUED)]
    await job_stub.PauseJob(jobs_pb.PauseJobRequest(name=job), metadata=USER)
    async with holding(engine) as reconciler:
        await reconciler.execute(
            text("UPDATE extraction_tasks SET generation = generation + 1 WHERE id = :id"),
            {"id": _id(queued)},
        )
        async with holding(engine) as report:
            await hold(report, TASK_ROW, _id(running))
            resuming = asyncio.create_task(
                _awaited(job_stub.ResumeJob(jobs_pb.ResumeJobRequest(name=job), metadata=USER))
            )
            await lock_waiter(engine, "%UPDATE extraction_tasks%")
            report_waits = asyncio.create_task(hold(report, JOB_ROW, _id(job)))
            await lock_waiter(engine, "%FROM extraction_jobs%FOR NO KEY UPDATE%")
            reconciler_waits = asyncio.create_task(hold(reconciler, TASK_ROW, _id(running)))
            await report_waits  # once ResumeJob's try is aborted
        await reconciler_waits
    resumed = await resuming
    assert resumed.status == pb.Job.RUNNING
    assert (await _job(job_stub, job)).status == pb.Job.RUNNING


async def test_a_failure_batch_locks_the_jobs_row_only_after_its_writes(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """Failure batches, like result batches, lock the job's row last (FOR NO KEY UPDATE),
    only for its counters, event and end: a run where every task fails does not queue all
    its workers' batches behind that one row for their writes. Here another transaction
    holds the job's row as another batch does: the batch gets as far as that lock, its last
    step, and applies once the row is free."""
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELD, 3)
    async with holding(engine) as batch:
        await hold(batch, JOB_ROW, _id(job))
        failing = asyncio.create_task(_fail(worker_stub, tasks))
        waiting = await lock_waiter(engine, "%FROM extraction_jobs%")
        assert "FOR NO KEY UPDATE" in waiting
        assert not failing.done()
    assert await failing == [(True, pb.Task.FAILED)] * 3
    got = await _job(job_stub, job)
    assert (got.status, got.counters.tasks_failed) == (pb.Job.FAILED, 3)


async def test_a_job_cancelled_while_its_failure_batch_runs_takes_no_failure(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """The failure batch reads its job without a lock; cancelled before the batch locks its
    row, the batch runs again with the row locked first, and a cancelled job's reports
    change nothing. The batch is held on one of its tasks' rows (after its first read of
    the job) while CancelJob commits."""
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELD, 2)
    async with holding(engine) as report:
        await hold(report, TASK_ROW, _id(tasks[0]))
        failing = asyncio.create_task(_fail(worker_stub, tasks))
        await lock_waiter(engine, "%FROM extraction_tasks%FOR UPDATE%")
        await job_stub.CancelJob(jobs_pb.CancelJobRequest(name=job), metadata=USER)
    assert await failing == [(False, pb.Task.CANCELLED)] * 2
    got = await _job(job_stub, job)
    assert (got.status, got.counters.tasks_failed) == (pb.Job.CANCELLED, 0)


def _failed_observed() -> float:
    return (
        REGISTRY.get_sample_value("bytereview_task_duration_seconds_count", {"outcome": "failed"})
        or 0.0
    )


async def test_a_failure_batch_run_again_observes_each_failure_once(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """A batch failing a task of each of two jobs fails the first job's task, then waits for
    the second's, which a report holds; the report then needs the first job's row, which the
    batch holds: PostgreSQL aborts the batch after it failed the first task, and the batch
    runs again. The task duration metric counts committed outcomes: two, not three."""
    first, second = sorted(
        [await running_tasks(job_stub, worker_stub, settings, FIELD, 1) for _ in range(2)]
    )
    (first_job, [first_task]), (_, [second_task]) = first, second
    before = _failed_observed()
    async with holding(engine) as report:
        await hold(report, TASK_ROW, _id(second_task))
        failing = asyncio.create_task(_fail(worker_stub, [first_task, second_task]))
        await lock_waiter(engine, "%FROM extraction_tasks%FOR UPDATE%")
        await hold(report, JOB_ROW, _id(first_job))  # once the batch's try is aborted
    assert await failing == [(True, pb.Task.FAILED)] * 2
    assert _failed_observed() - before == 2


async def test_a_begin_of_a_queued_job_locks_a_running_tasks_row_before_the_jobs(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """A job can be QUEUED with a task RUNNING: a begin batch read the job running, a pause
    and a resume (no task running then: QUEUED) came before it locked the task, and it
    began the task. A begin of that task again (redelivered) must lock the task's row
    before the job's, as a report does: while it waits for the task's row (here a report's),
    the job's row is free, which that report needs next; locking the job first closed a
    lock cycle."""
    job = await ready_job(job_stub, worker_stub, settings, files=2)
    task, _ = sorted(await started_tasks(job_stub, settings, job, FIELD, 2))
    assert await _begin(worker_stub, [task]) == [True]
    assert await _fail(worker_stub, [task], Failure.RETRYABLE) == [(True, pb.Task.QUEUED)]
    async with holding(engine) as other:
        await hold(other, TASK_ROW, _id(task))
        beginning = asyncio.create_task(_begin(worker_stub, [task]))  # reads the job RUNNING
        await lock_waiter(engine, "%FROM extraction_tasks%FOR UPDATE%")
        await job_stub.PauseJob(jobs_pb.PauseJobRequest(name=job), metadata=USER)
        resuming = asyncio.create_task(
            _awaited(job_stub.ResumeJob(jobs_pb.ResumeJobRequest(name=job), metadata=USER))
        )
        await lock_waiter(engine, "%UPDATE extraction_tasks%")
    assert await beginning == [True]
    assert (await resuming).status == pb.Job.QUEUED
    got = await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)
    assert {t.name: t.status for t in got.tasks}[task] == pb.Task.RUNNING

    async with holding(engine) as report:
        await hold(report, TASK_ROW, _id(task))
        beginning = asyncio.create_task(_begin(worker_stub, [task]))
        await lock_waiter(engine, "%extraction_tasks%")
        await hold(report, JOB_ROW.replace("UPDATE", "UPDATE NOWAIT"), _id(job))
    assert await beginning == [True]
    assert (await _job(job_stub, job)).status == pb.Job.RUNNING


@pytest.mark.settings(outbox_reconcile_seconds=3600)  # passes run here, not in the background
async def test_a_reconciler_pass_aborted_in_a_lock_cycle_runs_again(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    engine: AsyncEngine,
    jobs: RunningJobsService,
) -> None:
    """The queue reconciler writes the open tasks whose messages were lost (a new message
    id each), queued and running ones, without their job's row, in id order. A report holds
    a running task's row and then needs the job's; a resume holds the job's and writes a
    queued task. The reconciler holds that queued task and waits for the running one:
    PostgreSQL aborts the pass, which runs again once the others are through, and every
    lost message is queued again."""
    job, [queued, running] = await running_tasks(job_stub, worker_stub, settings, FIELD, 2)
    assert await _fail(worker_stub, [queued], Failure.RETRYABLE) == [(True, pb.Task.QUEUED)]
    # The messages are gone (taken and acked): the first pass suspects, the second acts.
    assert await jobs.reconciler.reconcile_once() == 0
    async with holding(engine) as report:
        await hold(report, TASK_ROW, _id(running))
        reconciling = asyncio.create_task(jobs.reconciler.reconcile_once())
        await lock_waiter(engine, "%UPDATE extraction_tasks%")  # its queued task written
        async with holding(engine) as resume:
            await hold(resume, JOB_ROW.replace("NO KEY ", ""), _id(job))
            resume_waits = asyncio.create_task(
                resume.execute(
                    text("UPDATE extraction_tasks SET generation = generation + 1 WHERE id = :id"),
                    {"id": _id(queued)},
                )
            )
            await lock_waiter(engine, "%UPDATE extraction_tasks%generation + 1%")
            report_waits = asyncio.create_task(hold(report, JOB_ROW, _id(job)))
            await resume_waits  # once the pass's try is aborted
        await report_waits
    assert await reconciling == 2


@pytest.mark.settings(outbox_reconcile_seconds=3600)  # passes run here, not in the background
async def test_a_reconciler_pass_leaves_a_task_settled_since_it_listed_it(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    engine: AsyncEngine,
    jobs: RunningJobsService,
) -> None:
    """A task that settles between the pass listing the open tasks and writing them needs
    no message, and its row is written only under its job's (reports, retries, re-runs):
    the pass leaves it. Here the pass waits on the first task's row while a result settles
    the second."""
    _, [first, second] = await running_tasks(job_stub, worker_stub, settings, FIELD, 2)
    assert await jobs.reconciler.reconcile_once() == 0  # the first pass suspects
    async with holding(engine) as other:
        await hold(other, TASK_ROW, _id(first))
        reconciling = asyncio.create_task(jobs.reconciler.reconcile_once())
        await lock_waiter(engine, "%UPDATE extraction_tasks%")
        values = struct_pb2.Struct()
        values.update({"t": "x"})
        got = await worker_stub.ReportTaskResult(
            worker_pb.ReportTaskResultRequest(task=second, values=values), metadata=WORKER
        )
        assert got.applied
    assert await reconciling == 1


RESULT_ROW = "SELECT id FROM extraction_results WHERE id = :id FOR UPDATE"
FILE_ROW = "SELECT id FROM source_files WHERE id = :id FOR UPDATE"


async def _result_of(job_stub: JobStub, job: str) -> pb.Result:
    got = await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    [result] = got.results
    return result


async def test_a_correction_aborted_in_a_lock_cycle_runs_again(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """UpdateResult locks the job's row, then writes the result's row and a version of it.
    Every path writing a result's row holds its job's first today, so the holder forces the
    cycle a path in the other order would close (as report batches write their tasks' rows
    before the job's): it holds the result's row, the correction waits for it, the holder
    then waits for the job's. PostgreSQL aborts the correction, which runs again once the
    holder is through (JobsContext.run_transaction): the user's edit is saved, and the user
    never sees INTERNAL for a cycle another transaction made."""
    job, [task, _] = await running_tasks(job_stub, worker_stub, settings, FIELD, 2)
    values = struct_pb2.Struct()
    values.update({"t": "extracted"})
    got = await worker_stub.ReportTaskResult(
        worker_pb.ReportTaskResultRequest(task=task, values=values), metadata=WORKER
    )
    assert got.applied
    result = await _result_of(job_stub, job)
    edit = struct_pb2.Struct()
    edit.update({"t": "corrected"})
    async with holding(engine) as report:
        await hold(report, RESULT_ROW, _id(result.name))
        correcting = asyncio.create_task(
            _awaited(
                job_stub.UpdateResult(
                    jobs_pb.UpdateResultRequest(result=pb.Result(name=result.name, values=edit)),
                    metadata=USER,
                )
            )
        )
        await lock_waiter(engine, "%result%")
        await hold(report, JOB_ROW, _id(job))  # once the correction's try is aborted
    corrected = await correcting
    assert dict(corrected.values) == {"t": "corrected"}
    assert corrected.edited
    assert dict((await _result_of(job_stub, job)).values) == {"t": "corrected"}


async def test_a_file_analysis_report_aborted_in_a_lock_cycle_runs_again(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """ReportFileAnalysis locks the job's row, then writes the file's row (and, at the last
    file, the job's status). The holder forces a cycle through them: it holds the file's
    row, the report waits for it, the holder then waits for the job's. PostgreSQL aborts
    the report, which runs again once the holder is through: the worker gets its answer
    (applied), not INTERNAL, which it would take for a failed attempt of the file; the job
    becomes READY with both files, each counted once."""
    job = await finalized_job(job_stub, settings, {"a.pdf": PDF, "b.pdf": PDF})
    first, second = sorted(f.name for f in await files(job_stub, job))

    def analysed(file: str) -> worker_pb.ReportFileAnalysisRequest:
        return worker_pb.ReportFileAnalysisRequest(
            file=file,
            status=pb.SourceFile.READY,
            media_type="application/pdf",
            size_bytes=len(PDF),
            page_count=1,
        )

    async with holding(engine) as other:
        await hold(other, FILE_ROW, _id(first))
        reporting = asyncio.create_task(
            _awaited(worker_stub.ReportFileAnalysis(analysed(first), metadata=WORKER))
        )
        await lock_waiter(engine, "%source_files%")
        await hold(other, JOB_ROW, _id(job))  # once the report's try is aborted
    assert (await reporting).applied
    assert (await worker_stub.ReportFileAnalysis(analysed(second), metadata=WORKER)).applied
    got = await _job(job_stub, job)
    assert (got.status, got.counters.files_ready) == (pb.Job.READY, 2)


async def test_an_archive_entries_report_aborted_in_a_lock_cycle_runs_again_afresh(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """ReportArchiveEntries locks the job's row, then registers the entries (each new row
    refers to the archive's). The holder forces a cycle: it holds the archive's row, the
    report waits for it at its first entry, the holder then waits for the job's. The report
    runs again, and its answer is the run's own: three files created, not the aborted
    try's first one counted again."""
    job = await finalized_job(job_stub, settings, {"batch.zip": b"PK\x03\x04"})
    [archive] = [f.name for f in await files(job_stub, job)]
    prefix = f"{job}/entries/{_id(archive)}/"
    entries = [
        worker_pb.ArchiveEntry(index=i, path=f"{i}.pdf", storage_key=f"{prefix}{i}", size_bytes=9)
        for i in range(3)
    ]
    async with holding(engine) as other:
        await hold(other, FILE_ROW, _id(archive))
        reporting = asyncio.create_task(
            _awaited(
                worker_stub.ReportArchiveEntries(
                    worker_pb.ReportArchiveEntriesRequest(archive=archive, entries=entries),
                    metadata=WORKER,
                )
            )
        )
        await lock_waiter(engine, "%source_files%")
        await hold(other, JOB_ROW, _id(job))  # once the report's try is aborted
    got = await reporting
    assert (got.created, len(got.queued), len(got.files)) == (3, 3, 3)
    assert len(await files(job_stub, job)) == 4  # the archive and its three entries
