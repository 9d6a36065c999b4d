"""The jobs service's side of files left out of a combined result: a worker's report of the
files it could not read is stored bounded, shown on the result, flags the empty values for
review, and a repeated report changes nothing (the single-task RPC, an older worker's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from google.protobuf import struct_pb2

from bytereview.core import Settings
from bytereview.core.limits import MAX_ERROR
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from tests.conftest import USER
from tests.services.jobs.helpers import WORKER, ready_job, started_tasks

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

FIELDS = [
    pb.JobField(name="number", data_type="text"),
    pb.JobField(name="total", data_type="currency"),
]


async def test_a_reported_skipped_file_is_stored_bounded_and_flags_empty_values(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=1)
    [task] = await started_tasks(job_stub, settings, job, FIELDS, 1)
    begun = await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
    [file] = begun.files
    values = struct_pb2.Struct()
    values.update({"number": "A-1", "total": None})
    sure = pb.ValueAssessment(confidence=0.999, verified=True)
    report = worker_pb.ReportTaskResultRequest(
        task=task,
        values=values,
        assessments={"number": sure, "total": pb.ValueAssessment(confidence=0.999)},
        skipped_files=[
            pb.SkippedFile(file=file.name, path=file.original_path, reason="x" * 5000),
            pb.SkippedFile(file="not a file name", path="other.pdf", reason="cannot read it"),
        ],
    )
    first = await worker_stub.ReportTaskResult(report, metadata=WORKER)
    again = await worker_stub.ReportTaskResult(report, metadata=WORKER)
    assert (first.applied, again.applied) == (True, False)

    got = await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    [result] = got.results
    assert [(s.file, s.path) for s in result.skipped_files] == [
        (file.name, file.original_path),
        ("", "other.pdf"),
    ]
    assert len(result.skipped_files[0].reason) == MAX_ERROR
    # The empty total may be printed in a file left out; the number found stays trusted.
    assert result.assessments["total"].needs_review
    assert not result.assessments["number"].needs_review
    assert result.values_needing_review == 1
    items = await job_stub.ListReviewItems(
        jobs_pb.ListReviewItemsRequest(parent=job), metadata=USER
    )
    [item] = items.review_items
    assert (item.field, list(item.reasons)) == ("total", ["file_skipped"])
    # Another threshold than the platform's finds it too (it counts as unverified).
    stricter = await job_stub.ListReviewItems(
        jobs_pb.ListReviewItemsRequest(parent=job, confidence_below=0.5), metadata=USER
    )
    assert [i.field for i in stricter.review_items] == ["total"]
