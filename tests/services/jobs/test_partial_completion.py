"""A job with files that could not be used never reports COMPLETED (#17).

Every task succeeding is not enough: a file that failed analysis (or unpacking, or was
given up on as a dead letter) has no result, so the job ends PARTIALLY_COMPLETED and says
how many files were lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from google.protobuf import struct_pb2

from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from tests.conftest import USER
from tests.pdfs import text_pdf
from tests.services.jobs import helpers as jobflow

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub

WORKER = (("authorization", "Bearer dev-worker-token-not-for-production"),)


async def run_every_task(
    job_stub: JobStub, worker_stub: worker_grpc.JobWorkerServiceAsyncStub, job: str
) -> None:
    """What an extract worker does for each task: begin it and report a result."""
    for task in await jobflow.tasks(job_stub, job):
        begin = await worker_stub.BeginTask(
            worker_pb.BeginTaskRequest(task=task.name), metadata=WORKER
        )
        assert begin.proceed
        values = struct_pb2.Struct()
        values.update({"invoice_number": "A-1", "total": 1.0})
        await worker_stub.ReportTaskResult(
            worker_pb.ReportTaskResultRequest(task=task.name, values=values, extractor="t"),
            metadata=WORKER,
        )


@pytest.mark.parametrize(
    ("bad_status", "error"),
    [
        (pb.SourceFile.FAILED, "the PDF is damaged and cannot be read"),
        (pb.SourceFile.UNSUPPORTED, "files of type text/plain cannot be extracted"),
    ],
    ids=["failed-analysis", "unsupported"],
)
async def test_unusable_files_make_the_job_partially_completed(
    job_stub: JobStub,
    worker_stub: worker_grpc.JobWorkerServiceAsyncStub,
    settings: Settings,
    bad_status: pb.SourceFile.Status.ValueType,
    error: str,
) -> None:
    pdf = text_pdf(["Invoice Number: A-1"])
    job = await jobflow.finalized_job(
        job_stub, settings, {"a.pdf": pdf, "b.pdf": pdf, "broken.pdf": b"%PDF-1.4 garbage"}
    )
    for f in await jobflow.files(job_stub, job):
        broken = f.original_path == "broken.pdf"
        await worker_stub.ReportFileAnalysis(
            worker_pb.ReportFileAnalysisRequest(
                file=f.name,
                status=bad_status if broken else pb.SourceFile.READY,
                media_type="application/pdf",
                error=error if broken else "",
            ),
            metadata=WORKER,
        )
    await jobflow.start(job_stub, job)
    await run_every_task(job_stub, worker_stub, job)

    done = await jobflow.wait_for(job_stub, job, jobflow.FINISHED, timeout=10)
    assert done.status == pb.Job.PARTIALLY_COMPLETED
    assert done.counters.tasks_succeeded == 2
    assert done.counters.tasks_failed == 0
    assert done.counters.files_failed == 1
    events = await job_stub.ListJobEvents(jobs_pb.ListJobEventsRequest(parent=job), metadata=USER)
    [finish] = [e for e in events.events if e.to_status == "PARTIALLY_COMPLETED"]
    assert finish.message == "2 succeeded, 0 failed, 1 file(s) not usable"


async def test_every_file_usable_and_every_task_done_is_completed(
    job_stub: JobStub, worker_stub: worker_grpc.JobWorkerServiceAsyncStub, settings: Settings
) -> None:
    pdf = text_pdf(["Invoice Number: A-1"])
    job = await jobflow.finalized_job(job_stub, settings, {"a.pdf": pdf, "b.pdf": pdf})
    for f in await jobflow.files(job_stub, job):
        await worker_stub.ReportFileAnalysis(
            worker_pb.ReportFileAnalysisRequest(
                file=f.name, status=pb.SourceFile.READY, media_type="application/pdf"
            ),
            metadata=WORKER,
        )
    await jobflow.start(job_stub, job)
    await run_every_task(job_stub, worker_stub, job)
    done = await jobflow.wait_for(job_stub, job, jobflow.FINISHED, timeout=10)
    assert done.status == pb.Job.COMPLETED
    assert done.counters.files_failed == 0
