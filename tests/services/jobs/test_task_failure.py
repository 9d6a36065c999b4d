"""A failed task says whether a retry may help (Task.failure): the class its worker gave the
failure is kept with it, alone and in a batch, and a task queued again no longer says it.
The job page and the CLI could only show the error text, so a user retried an unreadable
file as hopefully as a timeout."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from tests.conftest import USER
from tests.services.jobs.helpers import WORKER, running_tasks, wait_for
from tests.services.jobs.test_batched_reports import FIELD, result

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
Class = worker_pb.ReportTaskFailureRequest.FailureClass


async def _failures(job_stub: JobStub, job: str) -> dict[str, tuple[int, int]]:
    listed = await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)
    return {t.name: (t.status, t.failure) for t in listed.tasks}


async def test_a_failed_task_says_whether_a_retry_may_help(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELD, 4)
    unreadable, outage, passing, batched = tasks
    await worker_stub.ReportTaskFailure(
        worker_pb.ReportTaskFailureRequest(
            task=unreadable, failure_class=Class.PERMANENT, error="a.pdf: not a PDF"
        ),
        metadata=WORKER,
    )
    await worker_stub.ReportTaskFailure(
        worker_pb.ReportTaskFailureRequest(
            task=outage, failure_class=Class.EXHAUSTED, error="model timed out, 5 attempts"
        ),
        metadata=WORKER,
    )
    await worker_stub.ReportTaskFailures(
        worker_pb.ReportTaskFailuresRequest(
            failures=[
                worker_pb.ReportTaskFailureRequest(
                    task=passing, failure_class=Class.RETRYABLE, error="503"
                ),
                worker_pb.ReportTaskFailureRequest(
                    task=batched, failure_class=Class.PERMANENT, error="folder too big"
                ),
            ]
        ),
        metadata=WORKER,
    )
    assert await _failures(job_stub, job) == {
        unreadable: (pb.Task.FAILED, pb.Task.PERMANENT),
        outage: (pb.Task.FAILED, pb.Task.EXHAUSTED),
        passing: (pb.Task.QUEUED, pb.Task.FAILURE_UNSPECIFIED),
        batched: (pb.Task.FAILED, pb.Task.PERMANENT),
    }

    # The one still running succeeds; then a retry queues the failed ones again.
    await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=passing), metadata=WORKER)
    await worker_stub.ReportTaskResult(result(passing), metadata=WORKER)
    await wait_for(job_stub, job, frozenset({pb.Job.PARTIALLY_COMPLETED}))
    await job_stub.RetryFailedTasks(jobs_pb.RetryFailedTasksRequest(name=job), metadata=USER)
    after = await _failures(job_stub, job)
    assert {after[t] for t in (unreadable, outage, batched)} == {
        (pb.Task.QUEUED, pb.Task.FAILURE_UNSPECIFIED)
    }
