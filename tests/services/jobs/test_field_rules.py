"""One field rule everywhere: a field list ConfigureJob refuses, PreviewExtraction refuses too,
with the same message (both run `bytereview.core.fields.check_fields`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest

from bytereview.core.settings import Settings
from bytereview.core.storage import make_storage
from bytereview.extract.v1 import extract_service_pb2 as extract_pb
from bytereview.extract.v1 import extract_service_pb2_grpc as extract_grpc
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.extract.model.ratecontrol import RateController
from services.extract.offline.extractor import OfflineExtractor
from services.extract.server import extract_server
from services.jobs import RunningJobsService
from tests.conftest import USER
from tests.services.jobs.helpers import ready_job

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

F = pb.JobField
REFUSED = {
    "no fields": [],
    "an empty name": [F(name="", data_type="text")],
    "a name used twice": [F(name="a", data_type="text"), F(name="A", data_type="text")],
    "an unknown type": [F(name="a", data_type="nope")],
    "a name with a space": [F(name="total due", data_type="currency")],
    "a name starting with a digit": [F(name="1st", data_type="text")],
    "a name of 65 characters": [F(name="n" * 65, data_type="text")],
    "101 fields": [F(name=f"f{i}", data_type="text") for i in range(101)],
    "an instruction of 2001 characters": [F(name="a", data_type="text", instruction="x" * 2001)],
}


@pytest.fixture
async def preview(
    settings: Settings, jobs: RunningJobsService
) -> AsyncIterator[extract_grpc.ExtractServiceAsyncStub]:
    """The extract service's preview server, on a port of its own, calling this jobs service."""
    local = settings.model_copy(update={"extract_addr": "127.0.0.1:0"})
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{jobs.port}") as to_jobs,
        extract_server(
            local,
            storage=make_storage(local),
            extractor=OfflineExtractor(),
            jobs=worker_grpc.JobWorkerServiceStub(to_jobs),
            rate=RateController(max_concurrency=1),
        ) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        yield extract_grpc.ExtractServiceStub(channel)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_configure_and_preview_refuse_the_same_fields(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    preview: extract_grpc.ExtractServiceAsyncStub,
) -> None:
    job = await ready_job(job_stub, worker_stub, settings)
    file = (await job_stub.ListFiles(jobs_pb.ListFilesRequest(parent=job), metadata=USER)).files[0]
    for why, fields in REFUSED.items():
        with pytest.raises(grpc.aio.AioRpcError) as configured:
            await job_stub.ConfigureJob(
                jobs_pb.ConfigureJobRequest(name=job, fields=fields), metadata=USER
            )
        with pytest.raises(grpc.aio.AioRpcError) as previewed:
            await preview.PreviewExtraction(
                extract_pb.PreviewExtractionRequest(file=file.name, fields=fields), metadata=USER
            )
        assert configured.value.code() == grpc.StatusCode.INVALID_ARGUMENT, why
        assert previewed.value.code() == grpc.StatusCode.INVALID_ARGUMENT, why
        if fields:  # with none, ConfigureJob asks for a template to copy them from instead
            assert previewed.value.details() == configured.value.details(), why
