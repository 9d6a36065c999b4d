"""One user's previews are bounded per replica (PREVIEWS_PER_USER): PreviewExtraction through
the real extract service, the real jobs service and the Gemini stand-in."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest

from bytereview.extract.v1 import extract_service_pb2 as extract_pb
from bytereview.extract.v1 import extract_service_pb2_grpc as extract_grpc
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from services.extract.server import PREVIEWS_PER_USER
from services.jobs import RunningJobsService
from tests.conftest import USER
from tests.gemini_standin import Reply, RunningStandIn
from tests.services.extract.test_worker import FIELDS, gemini_settings, running_worker
from tests.services.jobs.helpers import ready_job

if TYPE_CHECKING:
    from bytereview.core import Settings
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

CALLS = 24


async def test_one_users_previews_are_bounded_like_renders(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
) -> None:
    """RenderPage holds at most 4 calls per user, InspectArchive 1. Each PreviewExtraction is
    a paid model call sharing the replica's concurrent calls (8) and the per-minute quota with
    every tenant's tasks: one user's burst took all 8 at once. Now 2 per user; the rest 429."""
    gemini.state.default = lambda seen: Reply(
        values={name: None for name in seen.schema.get("properties", {})}, delay=5.0
    )
    job = await ready_job(job_stub, worker_stub, settings, files=1)
    files = await job_stub.ListFiles(jobs_pb.ListFilesRequest(parent=job), metadata=USER)
    request = extract_pb.PreviewExtractionRequest(file=files.files[0].name, fields=FIELDS)
    async with running_worker(gemini_settings(settings, jobs, gemini)) as port:
        address = f"127.0.0.1:{await asyncio.wait_for(port, timeout=30)}"
        async with grpc.aio.insecure_channel(address) as ch:
            stub = extract_grpc.ExtractServiceStub(ch)
            calls = [
                asyncio.ensure_future(stub.PreviewExtraction(request, metadata=USER, timeout=60))
                for _ in range(CALLS)
            ]
            done = await asyncio.gather(*calls, return_exceptions=True)
    # Every call reached the service long before the first answer (5 s): those the model saw
    # ran at once.
    at_once = len(gemini.state.seen)
    assert at_once == PREVIEWS_PER_USER, f"one user had {at_once} previews running at once"
    refused = [
        r
        for r in done
        if isinstance(r, grpc.aio.AioRpcError) and r.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    ]
    assert len(refused) == CALLS - at_once, done  # a clear 429 at once; the others answered
