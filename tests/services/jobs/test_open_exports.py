"""Exports a client stops reading are bounded per user (domain.export.EXPORTS_PER_USER)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import struct_pb2

from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs.domain.export.exporter import EXPORTS_PER_USER
from tests.conftest import USER
from tests.services.jobs.helpers import WORKER, ready_job, started_tasks

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_user_holds_a_few_exports_open_at_once(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    # An export whose client stops reading waits on gRPC's flow control, holding its page of
    # results in memory, for as long as the client keeps the connection: 20 such exports of
    # this job from one user held 613 MB of the jobs service, and nothing bounded their
    # number. Past EXPORTS_PER_USER, RESOURCE_EXHAUSTED (a 429).
    count = 20
    job = await ready_job(job_stub, worker_stub, settings, files=count)
    fields = [pb.JobField(name=f"f{i}", data_type="text") for i in range(100)]
    for n, task in enumerate(await started_tasks(job_stub, settings, job, fields, count)):
        await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
        values = struct_pb2.Struct()
        values.update({f"f{i}": f"{n}-{i}-".ljust(10_000, "v") for i in range(100)})
        await worker_stub.ReportTaskResult(
            worker_pb.ReportTaskResultRequest(task=task, values=values), metadata=WORKER
        )

    def export() -> Any:
        return job_stub.ExportResults(jobs_pb.ExportResultsRequest(name=job), metadata=USER)

    held = []
    for _ in range(EXPORTS_PER_USER):
        call = export()
        await call.read()  # started, then never read again: 20 MB it cannot send
        held.append(call)
    refused = export()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await refused.read()
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "exports" in (err.value.details() or "")
    # A cancelled export gives its slot back.
    held.pop().cancel()
    for _ in range(50):
        again = export()
        try:
            await again.read()
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    else:
        raise AssertionError("the slot of the cancelled export was not given back")
    for call in [*held, again]:
        call.cancel()
