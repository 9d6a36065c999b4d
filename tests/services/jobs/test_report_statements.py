"""A batch of reports inserts its rows in a few statements on PostgreSQL (#18 part 2).

Each report of a five-field job adds a result, its first version and five review items.
As an executemany, asyncpg would run one INSERT per row (50,000 statements for a 10,000-task
job), each inside the transaction that holds the job's row lock; the engine sends them as
multi-row INSERTs instead (services/jobs/store/db.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from google.protobuf import struct_pb2
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bytereview.core import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs import RunningJobsService
from tests.conftest import USER
from tests.services.jobs.helpers import WORKER, ready_job

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
TASKS = 40
FIELDS = [pb.JobField(name=f"field_{i}", data_type="text") for i in range(5)]


async def test_a_batch_of_reports_inserts_its_rows_in_a_few_statements(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=TASKS)
    await job_stub.ConfigureJob(jobs_pb.ConfigureJobRequest(name=job, fields=FIELDS), metadata=USER)
    await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    listed = await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)
    names = [task.name for task in listed.tasks]
    assert len(names) == TASKS
    begun = worker_pb.BeginTasksRequest(tasks=[worker_pb.BeginTaskRequest(task=t) for t in names])
    await worker_stub.BeginTasks(begun, metadata=WORKER)

    # INSERTs as the driver gets them: rows per statement (an executemany of single-row
    # statements, which asyncpg runs one by one, shows as 1).
    inserts: dict[str, list[int]] = {}

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if found := re.match(r"\s*INSERT INTO (\w+)", statement):
            rows = statement.count("), (") + 1
            inserts.setdefault(found.group(1), []).append(rows)

    reports = []
    for name in names:
        values = struct_pb2.Struct()
        values.update({f.name: f"value of {f.name}" for f in FIELDS})
        assessed = {f.name: pb.ValueAssessment(confidence=0.9, verified=True) for f in FIELDS}
        reports.append(
            worker_pb.ReportTaskResultRequest(
                task=name, values=values, extractor="x", assessments=assessed
            )
        )
    event.listen(Engine, "before_cursor_execute", count)
    try:
        await worker_stub.ReportTaskResults(
            worker_pb.ReportTaskResultsRequest(results=reports), metadata=WORKER
        )
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    results = await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    assert len(results.results) == TASKS
    # 40 results, 40 versions and 200 review items: one multi-row INSERT each.
    assert inserts["extraction_results"] == [TASKS], inserts
    assert inserts["result_versions"] == [TASKS], inserts
    assert inserts["review_items"] == [TASKS * len(FIELDS)], inserts
