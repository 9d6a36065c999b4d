"""Typed helpers that drive a job through the real jobs service (for the reliability tests)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

from bytereview.core.settings import Settings
from bytereview.core.storage import make_storage
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from tests.conftest import USER

if TYPE_CHECKING:  # the async stub type exists in the generated .pyi only
    from typing import TypeAlias

    JobStub: TypeAlias = jobs_grpc.JobServiceAsyncStub
FIELDS = [
    pb.JobField(name="invoice_number", data_type="text", instruction="the invoice number"),
    pb.JobField(name="total", data_type="currency"),
]
FINISHED = frozenset({pb.Job.COMPLETED, pb.Job.PARTIALLY_COMPLETED, pb.Job.FAILED})


def upload(settings: Settings, target: jobs_pb.UploadTarget, data: bytes) -> None:
    key = parse_qs(urlparse(target.url).query)["key"][0]
    with make_storage(settings).open_write(key) as handle:
        handle.write(data)


async def finalized_job(stub: JobStub, settings: Settings, files: dict[str, bytes]) -> str:
    """A job declaring `files` (path -> bytes), uploaded and finalized: analysis is queued."""
    created = await stub.CreateJob(
        jobs_pb.CreateJobRequest(
            files=[jobs_pb.DeclaredFile(path=p, size_bytes=len(d)) for p, d in files.items()]
        ),
        metadata=USER,
    )
    for target in created.upload_targets:
        upload(settings, target, files[target.path])
    await stub.FinalizeUploads(jobs_pb.FinalizeUploadsRequest(name=created.job.name), metadata=USER)
    return str(created.job.name)


async def start(stub: JobStub, job: str) -> None:
    await stub.ConfigureJob(jobs_pb.ConfigureJobRequest(name=job, fields=FIELDS), metadata=USER)
    await stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)


async def wait_for(
    stub: JobStub, job: str, statuses: frozenset[int], *, timeout: float = 60
) -> pb.Job:
    deadline = time.monotonic() + timeout
    while True:
        got = await stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
        if got.status in statuses:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{job} is still {pb.Job.Status.Name(got.status)}")
        await asyncio.sleep(0.2)


async def results(stub: JobStub, job: str) -> list[pb.Result]:
    got = await stub.ListResults(
        jobs_pb.ListResultsRequest(parent=job, page_size=1000), metadata=USER
    )
    return list(got.results)


async def tasks(stub: JobStub, job: str) -> list[pb.Task]:
    got = await stub.ListTasks(jobs_pb.ListTasksRequest(parent=job, page_size=1000), metadata=USER)
    return list(got.tasks)


async def files(stub: JobStub, job: str) -> list[pb.SourceFile]:
    got = await stub.ListFiles(jobs_pb.ListFilesRequest(parent=job, page_size=1000), metadata=USER)
    return list(got.files)
