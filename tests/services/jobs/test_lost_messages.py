"""Messages JetStream lost after the outbox sent them are queued again (#17).

Under `up`, a second nats-server on the same data directory left the stream empty while the
outbox rows stayed "sent", and the job hung. Here the stream is purged (or deleted) under a
started job; the reconciler notices the shortfall and the job still completes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import nats
import pytest
from sqlalchemy import func, select

from bytereview.core import streams
from bytereview.core.settings import Settings
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.extract.worker import serve as serve_extract
from services.ingest.worker import serve as serve_ingest
from services.jobs.server import RunningJobsService
from services.jobs.store import models
from tests.pdfs import text_pdf
from tests.services.jobs import helpers as jobflow

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub

WORKER = (("authorization", "Bearer dev-worker-token-not-for-production"),)
PDF = text_pdf(["Invoice Number: A-1", "Total: 10.00"])
pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.settings(outbox_reconcile_seconds=0.5),
]


@asynccontextmanager
async def running(
    serve: Callable[[Settings, asyncio.Event], Coroutine[Any, Any, None]],
    settings: Settings,
    jobs: RunningJobsService,
) -> AsyncIterator[None]:
    cfg = settings.model_copy(
        update={
            "jobs_addr": f"127.0.0.1:{jobs.port}",
            "extract_addr": "127.0.0.1:0",
            "ingest_addr": "127.0.0.1:0",
        }
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(cfg, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)


async def until(check: Callable[[], Coroutine[Any, Any, bool]], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def analysed_job(
    job_stub: JobStub, worker_stub: worker_grpc.JobWorkerServiceAsyncStub, settings: Settings
) -> str:
    job = await jobflow.finalized_job(job_stub, settings, {f"d{i}.pdf": PDF for i in range(4)})
    for f in await jobflow.files(job_stub, job):
        await worker_stub.ReportFileAnalysis(
            worker_pb.ReportFileAnalysisRequest(
                file=f.name, status=pb.SourceFile.READY, media_type="application/pdf"
            ),
            metadata=WORKER,
        )
    return job


async def test_a_purged_task_queue_is_filled_again(
    job_stub: JobStub,
    worker_stub: worker_grpc.JobWorkerServiceAsyncStub,
    settings: Settings,
    jobs: RunningJobsService,
) -> None:
    spec = streams.extract_queue(settings)
    job = await analysed_job(job_stub, worker_stub, settings)
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    try:
        await jobflow.start(job_stub, job)

        async def all_sent() -> bool:
            return (await js.stream_info(spec.stream)).state.messages == 4

        await until(all_sent)
        await js.purge_stream(spec.stream)  # the store lost them; the outbox says "sent"
    finally:
        await nc.close()
    async with running(serve_extract, settings, jobs):
        done = await jobflow.wait_for(job_stub, job, jobflow.FINISHED)
    assert done.status == pb.Job.COMPLETED
    assert len(await jobflow.results(job_stub, job)) == 4
    assert jobs.reconciler.requeued == 4


async def test_a_deleted_stream_is_declared_again_and_nothing_counts_as_sent(
    job_stub: JobStub,
    worker_stub: worker_grpc.JobWorkerServiceAsyncStub,
    settings: Settings,
    jobs: RunningJobsService,
) -> None:
    spec = streams.extract_queue(settings)
    job = await analysed_job(job_stub, worker_stub, settings)
    jobs.reconciler.stop()  # first: the relay alone, with no stream to store into
    nc = await nats.connect(settings.nats_url)
    try:
        await nc.jetstream().delete_stream(spec.stream)
    finally:
        await nc.close()
    await jobflow.start(job_stub, job)
    await asyncio.sleep(2)  # the relay tries (and fails) a few times

    async with jobs.ctx.reading() as session:
        unsent = await session.scalar(
            select(func.count())
            .select_from(models.OutboxMessage)
            .where(models.OutboxMessage.sent_at.is_(None))
        )
    assert unsent == 4  # no ack from JetStream, so nothing was marked sent

    await jobs.reconciler.reconcile_once()  # finds the stream gone and declares it again
    nc = await nats.connect(settings.nats_url)
    try:

        async def relayed() -> bool:
            return (await nc.jetstream().stream_info(spec.stream)).state.messages == 4

        await until(relayed)  # before any worker (which declares queues too) has started
    finally:
        await nc.close()
    async with running(serve_extract, settings, jobs):
        done = await jobflow.wait_for(job_stub, job, jobflow.FINISHED)
    assert done.status == pb.Job.COMPLETED
    assert len(await jobflow.results(job_stub, job)) == 4


async def test_a_purged_ingest_queue_is_filled_again(
    job_stub: JobStub, settings: Settings, jobs: RunningJobsService
) -> None:
    spec = streams.ingest_queue(settings)
    job = await jobflow.finalized_job(job_stub, settings, {f"d{i}.pdf": PDF for i in range(3)})
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    try:

        async def all_sent() -> bool:
            return (await js.stream_info(spec.stream)).state.messages == 3

        await until(all_sent)
        await js.purge_stream(spec.stream)
    finally:
        await nc.close()
    async with running(serve_ingest, settings, jobs):
        done = await jobflow.wait_for(job_stub, job, frozenset({pb.Job.READY}))
    assert done.counters.files_ready == 3
    assert jobs.reconciler.requeued == 3
