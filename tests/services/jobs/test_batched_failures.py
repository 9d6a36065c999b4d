"""ReportTaskFailures (#18): many failures per call and per transaction, each under the rules
of ReportTaskFailure, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc
import pytest

from bytereview.core.limits import MAX_TASKS_PER_BATCH
from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from tests.conftest import USER
from tests.services.jobs.helpers import WORKER, ready_job, started_tasks
from tests.services.jobs.test_batched_reports import FIELD, begin, events, report

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

Class = worker_pb.ReportTaskFailureRequest.FailureClass
RETRYABLE, PERMANENT, EXHAUSTED = Class.RETRYABLE, Class.PERMANENT, Class.EXHAUSTED


async def fail(
    worker_stub: WorkerStub, failures: Sequence[tuple[str, int, str]]
) -> list[tuple[bool, int]]:
    got = await worker_stub.ReportTaskFailures(
        worker_pb.ReportTaskFailuresRequest(
            failures=[
                worker_pb.ReportTaskFailureRequest(task=t, failure_class=c, error=e)  # type: ignore[arg-type]
                for t, c, e in failures
            ]
        ),
        metadata=WORKER,
    )
    return [(f.applied, f.status) for f in got.failures]


async def get_job(job_stub: JobStub, job: str) -> pb.Job:
    return await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)


async def test_a_batch_of_mixed_failures_applies_each_once(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=6)
    tasks = await started_tasks(job_stub, settings, job, FIELD, 6)
    await begin(worker_stub, tasks)
    before = len(await events(job_stub, job))

    batch = [
        (tasks[0], RETRYABLE, "503"),
        (tasks[1], PERMANENT, "unreadable"),
        (tasks[2], EXHAUSTED, "timed out"),
        (tasks[0], RETRYABLE, "503"),  # a repeat in the same batch
    ]
    assert await fail(worker_stub, batch) == [
        (True, pb.Task.QUEUED),
        (True, pb.Task.FAILED),
        (True, pb.Task.FAILED),
        (False, pb.Task.QUEUED),
    ]
    # A redelivered batch changes nothing and says where each task stands.
    assert await fail(worker_stub, batch) == [
        (False, pb.Task.QUEUED),
        (False, pb.Task.FAILED),
        (False, pb.Task.FAILED),
        (False, pb.Task.QUEUED),
    ]
    got = await get_job(job_stub, job)
    assert (got.status, got.counters.tasks_failed) == (pb.Job.RUNNING, 2)
    listed = (await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)).tasks
    errors = {t.name: (t.status, t.last_error) for t in listed}
    assert errors[tasks[0]] == (pb.Task.QUEUED, "503")
    assert errors[tasks[1]] == (pb.Task.FAILED, "unreadable")
    assert errors[tasks[2]] == (pb.Task.FAILED, "timed out")

    # The retried task runs again, as a second attempt.
    [again] = await begin(worker_stub, [tasks[0]])
    assert (again.proceed, again.task.attempts) == (True, 2)

    # The last open tasks end in a mix of results and failures: the job ends once.
    assert await report(worker_stub, tasks[3:5]) == [True, True]
    last = [(tasks[0], PERMANENT, "bad"), (tasks[5], EXHAUSTED, "gave up")]
    assert await fail(worker_stub, last) == [(True, pb.Task.FAILED)] * 2
    got = await get_job(job_stub, job)
    assert got.status == pb.Job.PARTIALLY_COMPLETED
    assert (got.counters.tasks_failed, got.counters.tasks_succeeded) == (4, 2)

    # One progress event per batch that changed something, none per task. The retried
    # task's begin is not one: starts are events only while they move the job to RUNNING
    # (a running job's begins do not take its row; see TaskReports.begin_tasks).
    trail = (await events(job_stub, job))[before:]
    progress = [(e.to_status, e.message) for e in trail if e.kind == "tasks.progress"]
    assert progress == [
        (
            "FAILED",
            "2 task(s) failed, 1 queued to retry; 2 of 6 failed; first error: RETRYABLE: 503",
        ),
        ("SUCCEEDED", "2 task(s) succeeded; 2 of 6 done"),
        (
            "FAILED",
            "2 task(s) failed, 0 queued to retry; 4 of 6 failed; first error: PERMANENT: bad",
        ),
    ]
    assert not [e for e in trail if e.kind == "task.status"]
    assert [e.to_status for e in trail if e.kind == "job.status"] == ["PARTIALLY_COMPLETED"]


async def test_a_job_whose_tasks_all_fail_in_one_batch_fails(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=3)
    tasks = await started_tasks(job_stub, settings, job, FIELD, 3)
    await begin(worker_stub, tasks)
    # Retryable ones do not end the job: the tasks are open again.
    assert (
        await fail(worker_stub, [(t, RETRYABLE, "503") for t in tasks])
        == [(True, pb.Task.QUEUED)] * 3
    )
    assert (await get_job(job_stub, job)).status == pb.Job.RUNNING
    await begin(worker_stub, tasks)
    assert (
        await fail(worker_stub, [(t, EXHAUSTED, "503") for t in tasks])
        == [(True, pb.Task.FAILED)] * 3
    )
    got = await get_job(job_stub, job)
    assert (got.status, got.counters.tasks_failed) == (pb.Job.FAILED, 3)


async def test_unusable_reports_do_not_fail_the_batch(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=1)
    [task] = await started_tasks(job_stub, settings, job, FIELD, 1)
    await begin(worker_stub, [task])
    missing = f"{job}/tasks/{'0' * 32}"
    got = await fail(
        worker_stub,
        [
            (missing, PERMANENT, "x"),
            ("not a task", PERMANENT, "x"),
            (task, Class.FAILURE_CLASS_UNSPECIFIED, "x"),
            (task, 99, "x"),  # a class this server does not know
            (task, PERMANENT, "unreadable"),
        ],
    )
    unspecified = pb.Task.STATUS_UNSPECIFIED
    assert got == [(False, unspecified)] * 4 + [(True, pb.Task.FAILED)]
    assert (await get_job(job_stub, job)).status == pb.Job.FAILED


async def test_a_failure_batch_over_the_limit_is_invalid_argument(
    worker_stub: WorkerStub,
) -> None:
    tasks = [f"jobs/{'a' * 32}/tasks/{i:032d}" for i in range(MAX_TASKS_PER_BATCH + 1)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await fail(worker_stub, [(t, PERMANENT, "x") for t in tasks])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_failure_of_an_earlier_attempt_changes_nothing(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    """Each failure says which attempt failed: one of an attempt before the task's latest (a
    worker stalled while the redelivered message began the task again) is not applied, in a
    batch or alone; the latest attempt's, or one that does not say (0), is."""
    job = await ready_job(job_stub, worker_stub, settings, files=4)
    tasks = await started_tasks(job_stub, settings, job, FIELD, 4)
    assert [b.task.attempts for b in await begin(worker_stub, tasks)] == [1] * 4
    assert [b.task.attempts for b in await begin(worker_stub, tasks)] == [2] * 4

    def failure(task: str, failure_class: int, attempt: int) -> worker_pb.ReportTaskFailureRequest:
        return worker_pb.ReportTaskFailureRequest(
            task=task,
            failure_class=failure_class,  # type: ignore[arg-type]
            error=f"attempt {attempt}",
            attempt=attempt,
        )

    stale = [failure(tasks[0], PERMANENT, 1), failure(tasks[1], RETRYABLE, 1)]
    got = await worker_stub.ReportTaskFailures(
        worker_pb.ReportTaskFailuresRequest(failures=stale), metadata=WORKER
    )
    # Superseded: the stalled worker leaves its message to the later attempt's delivery.
    assert [(f.applied, f.status, f.superseded) for f in got.failures] == [
        (False, pb.Task.RUNNING, True)
    ] * 2
    one = await worker_stub.ReportTaskFailure(failure(tasks[2], EXHAUSTED, 1), metadata=WORKER)
    assert (one.applied, one.status, one.superseded) == (False, pb.Task.RUNNING, True)
    # The running attempts' own reports apply: results, the latest attempt's failure, and a
    # failure that names no attempt.
    assert await report(worker_stub, tasks[:2]) == [True, True]
    current = await worker_stub.ReportTaskFailures(
        worker_pb.ReportTaskFailuresRequest(
            failures=[failure(tasks[2], PERMANENT, 2), failure(tasks[3], PERMANENT, 0)]
        ),
        metadata=WORKER,
    )
    assert [(f.applied, f.status, f.superseded) for f in current.failures] == [
        (True, pb.Task.FAILED, False)
    ] * 2
    got_job = await get_job(job_stub, job)
    assert (got_job.counters.tasks_succeeded, got_job.counters.tasks_failed) == (2, 2)
    listed = (await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)).tasks
    errors = {t.name: t.last_error for t in listed}
    assert [errors[t] for t in tasks] == ["", "", "attempt 2", "attempt 0"]
