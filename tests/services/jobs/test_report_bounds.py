"""The jobs service refuses a worker's result past what a job can ask for (a worker token
could be stolen): a value longer than MAX_VALUE_CHARS, a list or an object, more fields
than a job has, more skipped files than a task has. It is refused alone (its task fails
saying why, nothing of it is stored), not the batch it came in; and only the job's fields
of a result are stored. Through the real jobs service, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from google.protobuf import struct_pb2

from bytereview.core.limits import MAX_FIELDS, MAX_FILES_PER_COMBINED_TASK, MAX_VALUE_CHARS
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from tests.conftest import USER
from tests.services.jobs.helpers import FIELDS, WORKER, running_tasks

if TYPE_CHECKING:
    from bytereview.core.settings import Settings
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


def _report(task: str, values: dict[str, Any], **more: Any) -> worker_pb.ReportTaskResultRequest:
    struct = struct_pb2.Struct()
    struct.update(values)
    return worker_pb.ReportTaskResultRequest(task=task, values=struct, **more)


async def _tasks(job_stub: JobStub, job: str) -> dict[str, pb.Task]:
    listed = await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)
    return {t.name: t for t in listed.tasks}


async def _results(job_stub: JobStub, job: str) -> dict[str, dict[str, Any]]:
    """The job's stored results, by task."""
    listed = await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    return {r.task: dict(r.values) for r in listed.results}


def _bad() -> list[tuple[dict[str, Any], dict[str, Any], str]]:
    """Reports past the bounds: (values, more request fields, what the refusal says)."""
    skipped = [pb.SkippedFile(file="f", path="p", reason="r")] * (MAX_FILES_PER_COMBINED_TASK + 1)
    return [
        (
            {"invoice_number": "x" * (MAX_VALUE_CHARS + 1)},
            {},
            f"result.values.invoice_number must be at most {MAX_VALUE_CHARS} characters",
        ),
        ({"invoice_number": {"a": [1]}}, {}, "not a object"),
        ({"invoice_number": ["a"]}, {}, "not a list"),
        ({f"f{i}": "1" for i in range(MAX_FIELDS + 1)}, {}, f"more than {MAX_FIELDS} fields"),
        ({"total": "1.00"}, {"skipped_files": skipped}, "result.skipped_files"),
    ]


async def test_a_result_past_the_bounds_in_a_batch_fails_its_task_alone(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    """One bad report used to refuse the whole batch (INVALID_ARGUMENT): the worker had every
    task of it redelivered, extracted again and, batched again with the bad one, dead-lettered.
    Now the honest ones apply and the bad one's task fails with why; the job finishes."""
    bad = _bad()
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELDS, len(bad) + 2)
    honest, refused = [tasks[0], tasks[-1]], tasks[1:-1]
    batch = worker_pb.ReportTaskResultsRequest(
        results=[
            _report(tasks[0], {"invoice_number": "A-1", "total": "1.00"}),
            *(
                _report(t, values, **more)
                for t, (values, more, _) in zip(refused, bad, strict=True)
            ),
            _report(tasks[-1], {"invoice_number": "B-2"}),
        ]
    )
    got = (await worker_stub.ReportTaskResults(batch, metadata=WORKER)).results
    assert [a.applied for a in got] == [True] + [False] * len(bad) + [True]
    assert (got[0].refused, got[-1].refused) == ("", "")
    for answer, (_, _, mentions) in zip(got[1:-1], bad, strict=True):
        assert answer.refused.startswith("the worker's result was refused: "), answer.refused
        assert mentions in answer.refused, answer.refused

    after = await _tasks(job_stub, job)
    assert {after[t].status for t in honest} == {pb.Task.SUCCEEDED}
    for task, answer in zip(refused, got[1:-1], strict=True):
        assert after[task].status == pb.Task.FAILED
        assert after[task].last_error == answer.refused
    # Nothing of a refused result is stored: a stolen worker token cannot fill the database.
    assert set(await _results(job_stub, job)) == set(honest)
    # Not wedged: every task settled, so the job ended.
    got_job = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got_job.status == pb.Job.PARTIALLY_COMPLETED

    # A repeat of the batch (a worker's retry) changes nothing, and still says why.
    again = (await worker_stub.ReportTaskResults(batch, metadata=WORKER)).results
    assert not any(a.applied for a in again)
    assert [a.refused for a in again] == [a.refused for a in got]
    assert await _tasks(job_stub, job) == after


async def test_a_single_result_past_the_bounds_fails_its_task_as_in_a_batch(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    """ReportTaskResult is a batch of one: the same report has the same effect whichever
    call carries it (the extract worker falls back to it), not an error redelivered."""
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELDS, 2)
    values, more, mentions = _bad()[0]
    got = await worker_stub.ReportTaskResult(_report(tasks[0], values, **more), metadata=WORKER)
    assert not got.applied
    assert got.refused.startswith("the worker's result was refused: ")
    assert mentions in got.refused
    after = await _tasks(job_stub, job)
    assert (after[tasks[0]].status, after[tasks[0]].last_error) == (pb.Task.FAILED, got.refused)
    assert after[tasks[1]].status == pb.Task.RUNNING

    honest = await worker_stub.ReportTaskResult(
        _report(tasks[1], {"total": "2.00"}), metadata=WORKER
    )
    assert (honest.applied, honest.refused) == (True, "")
    assert set(await _results(job_stub, job)) == {tasks[1]}
    got_job = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got_job.status == pb.Job.PARTIALLY_COMPLETED


async def test_a_value_at_the_limit_is_stored_and_unasked_fields_are_dropped(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELDS, 1)
    longest = "y" * MAX_VALUE_CHARS
    got = await worker_stub.ReportTaskResult(
        _report(
            tasks[0],
            {"invoice_number": longest, "total": "1.00", "not_asked": "z"},
            value_sources={"not_asked": "jobs/x/files/y"},
        ),
        metadata=WORKER,
    )
    assert got.applied
    [result] = (
        await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    ).results
    assert dict(result.values) == {"invoice_number": longest, "total": "1.00"}
    assert not result.value_sources


async def test_a_refused_result_of_an_earlier_attempt_leaves_the_task_to_its_latest(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker stalled past its ack deadline while the redelivered message began the task
    again: its refused result (it is told why, and that it is superseded: it leaves its
    message to the later delivery) fails nothing, in a batch or alone, as its own failure
    would not; the latest attempt's honest result then completes the task. Its honest
    result would have applied (test_batched_failures)."""
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELDS, 2)
    again = await worker_stub.BeginTasks(
        worker_pb.BeginTasksRequest(tasks=[worker_pb.BeginTaskRequest(task=t) for t in tasks]),
        metadata=WORKER,
    )
    assert [b.task.attempts for b in again.tasks] == [2, 2]
    values, more, mentions = _bad()[0]
    batch = await worker_stub.ReportTaskResults(
        worker_pb.ReportTaskResultsRequest(results=[_report(tasks[0], values, attempt=1, **more)]),
        metadata=WORKER,
    )
    one = await worker_stub.ReportTaskResult(
        _report(tasks[1], values, attempt=1, **more), metadata=WORKER
    )
    for answer in (*batch.results, one):
        assert (answer.applied, answer.superseded) == (False, True)
        assert mentions in answer.refused, answer.refused
    after = await _tasks(job_stub, job)
    assert [(after[t].status, after[t].last_error) for t in tasks] == [(pb.Task.RUNNING, "")] * 2
    # Said in the log, without what the worker sent.
    logged = [r.getMessage() for r in caplog.records if "later attempt" in r.getMessage()]
    assert sorted(logged) == sorted(
        f"refused result of {t}, attempt 1, left to the task's later attempt" for t in tasks
    )
    got_job = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert (got_job.status, got_job.counters.tasks_failed) == (pb.Job.RUNNING, 0)

    honest = await worker_stub.ReportTaskResults(
        worker_pb.ReportTaskResultsRequest(
            results=[
                _report(tasks[0], {"total": "1.00"}, attempt=2),
                _report(tasks[1], {"total": "2.00"}, attempt=2),
            ]
        ),
        metadata=WORKER,
    )
    assert [(a.applied, a.refused, a.superseded) for a in honest.results] == [(True, "", False)] * 2
    assert set(await _results(job_stub, job)) == set(tasks)
    got_job = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got_job.status == pb.Job.COMPLETED


@pytest.mark.parametrize("attempt", [2, 0])
async def test_a_refused_result_of_the_latest_attempt_still_fails_its_task(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, attempt: int
) -> None:
    """The latest attempt's refused result, or one that names no attempt (0: a worker older
    than the field), fails its task PERMANENT as before, in a batch or alone."""
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELDS, 2)
    await worker_stub.BeginTasks(
        worker_pb.BeginTasksRequest(tasks=[worker_pb.BeginTaskRequest(task=t) for t in tasks]),
        metadata=WORKER,
    )
    values, more, _ = _bad()[0]
    batch = await worker_stub.ReportTaskResults(
        worker_pb.ReportTaskResultsRequest(
            results=[_report(tasks[0], values, attempt=attempt, **more)]
        ),
        metadata=WORKER,
    )
    one = await worker_stub.ReportTaskResult(
        _report(tasks[1], values, attempt=attempt, **more), metadata=WORKER
    )
    refusals = [batch.results[0].refused, one.refused]
    assert all(refusals)
    assert [batch.results[0].superseded, one.superseded] == [False, False]
    after = await _tasks(job_stub, job)
    assert [(after[t].status, after[t].last_error) for t in tasks] == [
        (pb.Task.FAILED, why) for why in refusals
    ]
    got_job = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert (got_job.status, got_job.counters.tasks_failed) == (pb.Job.FAILED, 2)
