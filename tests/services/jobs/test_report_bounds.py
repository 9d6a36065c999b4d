"""The jobs service refuses a worker's result past what a job can ask for (a worker token
could be stolen): a value longer than MAX_VALUE_CHARS, a list or an object, more fields
than a job has, more skipped files than a task has; and it stores only the job's fields.
Through the real jobs service, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
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


async def _refused(call: Any, *, mentions: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert mentions in (err.value.details() or ""), err.value.details()


async def _statuses(job_stub: JobStub, job: str) -> dict[str, int]:
    listed = await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)
    return {t.name: t.status for t in listed.tasks}


async def test_a_report_past_the_bounds_is_refused_and_changes_nothing(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELDS, 2)
    skipped = [pb.SkippedFile(file="f", path="p", reason="r")] * (MAX_FILES_PER_COMBINED_TASK + 1)
    bad: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({"invoice_number": "x" * (MAX_VALUE_CHARS + 1)}, {}, "at most 10000 characters"),
        ({"invoice_number": {"a": [1]}}, {}, "not a object"),
        ({"invoice_number": ["a"]}, {}, "not a list"),
        ({f"f{i}": "1" for i in range(MAX_FIELDS + 1)}, {}, f"more than {MAX_FIELDS} fields"),
        ({"total": "1.00"}, {"skipped_files": skipped}, "skipped_files"),
    ]
    for values, more, mentions in bad:
        await _refused(
            worker_stub.ReportTaskResult(_report(tasks[0], values, **more), metadata=WORKER),
            mentions=mentions,
        )
        # In a batch, the whole batch is refused, naming the report.
        batch = worker_pb.ReportTaskResultsRequest(
            results=[_report(tasks[1], {"total": "1.00"}), _report(tasks[0], values, **more)]
        )
        await _refused(worker_stub.ReportTaskResults(batch, metadata=WORKER), mentions="results[1]")
    assert set((await _statuses(job_stub, job)).values()) == {pb.Task.RUNNING}
    listed = await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    assert not listed.results


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
