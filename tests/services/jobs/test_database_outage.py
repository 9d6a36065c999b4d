"""A PostgreSQL restart mid-job loses nothing (#17 item 1).

The real jobs service on a PostgreSQL server of its own, which the test stops (fast
shutdown: connections are cut) while workers are mid-message, and starts again seconds later.
MaxDeliver is 1: a single delivery spent on the outage would fail the work for good.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import nats
import pytest
from nats.aio.msg import Msg
from pydantic import SecretStr

from bytereview.core import streams
from bytereview.core.settings import Settings
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.extract.worker import serve as serve_extract
from services.ingest.worker import serve as serve_ingest
from services.jobs.domain import DeadLetters, IngestReports, TaskReports
from services.jobs.messaging import DeadLetterMonitor
from services.jobs.server import RunningJobsService, prepare_database
from tests import archives
from tests.gemini_standin import API_KEY, GeminiStandIn, Reply, RunningStandIn, Seen
from tests.pdfs import text_pdf
from tests.servers import PostgresServer, postgres_server
from tests.services.jobs import helpers as jobflow

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub
WORKER = (("authorization", "Bearer dev-worker-token-not-for-production"),)
ANSWER = {"invoice_number": "A-1", "total": 10.0}
# What the platform stores: money as a decimal string with two places.
STORED = {"invoice_number": "A-1", "total": "10.00"}
DOWN_SECONDS = 4.0
pytestmark = pytest.mark.settings(max_deliver=1)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server these tests may stop (the session's shared one stays up)."""
    with postgres_server() as server:
        url = server.create_database("outage_template")
        asyncio.run(prepare_database(Settings(env="dev", database_url=url)))
        yield server


@pytest.fixture
def database_url(own_postgres: PostgresServer) -> str:
    return own_postgres.create_database(f"t_{uuid.uuid4().hex[:12]}", template="outage_template")


@asynccontextmanager
async def postgres_down(server: PostgresServer) -> AsyncIterator[None]:
    await asyncio.to_thread(server.stop)
    try:
        yield
    finally:
        await asyncio.to_thread(server.start)


@asynccontextmanager
async def running(
    serve: Callable[[Settings, asyncio.Event], Coroutine[Any, Any, None]], settings: Settings
) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)


def worker_settings(settings: Settings, jobs: RunningJobsService, **changes: object) -> Settings:
    return settings.model_copy(
        update={
            "jobs_addr": f"127.0.0.1:{jobs.port}",
            "extract_addr": "127.0.0.1:0",
            "ingest_addr": "127.0.0.1:0",
            **changes,
        }
    )


async def wait_until_queued(settings: Settings, spec: streams.QueueSpec, count: int) -> None:
    """Until the outbox relay has put `count` messages on the queue."""
    nc = await nats.connect(settings.nats_url)
    try:
        deadline = time.monotonic() + 30
        while (await streams.consumer_lag(nc.jetstream(), spec))[0] < count:
            assert time.monotonic() < deadline, "the relay never published"
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def test_postgres_restart_mid_extraction(
    job_stub: JobStub,
    worker_stub: worker_grpc.JobWorkerServiceAsyncStub,
    settings: Settings,
    jobs: RunningJobsService,
    own_postgres: PostgresServer,
) -> None:
    pdf = text_pdf(["Invoice Number: A-1", "Total: 10.00"])
    paths = {f"doc{i}.pdf": pdf for i in range(6)}
    job = await jobflow.finalized_job(job_stub, settings, paths)
    for f in await jobflow.files(job_stub, job):
        await worker_stub.ReportFileAnalysis(
            worker_pb.ReportFileAnalysisRequest(
                file=f.name, status=pb.SourceFile.READY, media_type="application/pdf"
            ),
            metadata=WORKER,
        )
    await jobflow.start(job_stub, job)

    called = threading.Event()

    def slow(seen: Seen) -> Reply:
        called.set()
        time.sleep(1.0)  # a model call in flight when the database goes away
        return Reply(values=ANSWER)

    state = GeminiStandIn(default=slow)
    with RunningStandIn(state) as gemini:
        cfg = worker_settings(
            settings,
            jobs,
            extract_concurrency=2,
            gemini_api_key=SecretStr(API_KEY),
            gemini_base_url=gemini.base_url,
            gemini_model="gemini-test",
        )
        async with running(serve_extract, cfg):
            # BeginTask done, the model answering.
            await asyncio.to_thread(lambda: called.wait(30))
            async with postgres_down(own_postgres):
                # Reports of the calls in flight and the next BeginTasks meet the outage.
                await asyncio.sleep(DOWN_SECONDS)
            done = await jobflow.wait_for(job_stub, job, jobflow.FINISHED)
    assert done.status == pb.Job.COMPLETED
    assert done.counters.tasks_succeeded == 6
    assert done.counters.tasks_failed == 0
    found = await jobflow.results(job_stub, job)
    every_task = sorted(t.name for t in await jobflow.tasks(job_stub, job))
    assert sorted(r.task for r in found) == every_task
    assert all(dict(r.values) == STORED for r in found)
    # Waiting in place: no task ran twice, no model call was repeated.
    assert len(state.seen) == 6


async def test_postgres_restart_mid_unpacking(
    job_stub: JobStub,
    settings: Settings,
    jobs: RunningJobsService,
    own_postgres: PostgresServer,
) -> None:
    inside = {f"batch/inv{i}.pdf": archives.invoice(f"Z-{i}") for i in range(8)}
    uploads = {
        "batch.zip": archives.zip_bytes(inside),
        "loose1.pdf": archives.invoice("L-1"),
        "loose2.pdf": archives.invoice("L-2"),
    }
    job = await jobflow.finalized_job(job_stub, settings, uploads)
    await wait_until_queued(settings, streams.ingest_queue(settings), 3)
    async with running(serve_ingest, worker_settings(settings, jobs)):
        async with postgres_down(own_postgres):
            # The worker analyses and unpacks; every report it makes meets the outage.
            await asyncio.sleep(DOWN_SECONDS)
        done = await jobflow.wait_for(job_stub, job, frozenset({pb.Job.READY}))
    assert done.counters.files_failed == 0
    assert done.counters.files_total == 11
    found = await jobflow.files(job_stub, job)
    paths = [f.original_path for f in found]
    assert len(paths) == len(set(paths)) == 11  # no entry registered twice
    statuses = {f.original_path: f.status for f in found}
    assert statuses.pop("batch.zip") == pb.SourceFile.UNPACKED
    assert set(statuses.values()) == {pb.SourceFile.READY}, statuses
    assert set(statuses) == {"loose1.pdf", "loose2.pdf", *(f"batch.zip/{p}" for p in inside)}


async def test_a_dead_letter_during_the_outage_is_recorded_once_it_is_over(
    job_stub: JobStub,
    worker_stub: worker_grpc.JobWorkerServiceAsyncStub,
    settings: Settings,
    jobs: RunningJobsService,
    own_postgres: PostgresServer,
) -> None:
    """JetStream sends its MAX_DELIVERIES advisory once: it must not be lost to the outage."""
    pdf = text_pdf(["Invoice Number: A-1"])
    job = await jobflow.finalized_job(job_stub, settings, {"a.pdf": pdf})
    [f] = await jobflow.files(job_stub, job)
    await worker_stub.ReportFileAnalysis(
        worker_pb.ReportFileAnalysisRequest(
            file=f.name, status=pb.SourceFile.READY, media_type="application/pdf"
        ),
        metadata=WORKER,
    )
    await jobflow.start(job_stub, job)
    spec = streams.extract_queue(settings)
    await wait_until_queued(settings, spec, 1)
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        seq = int((await js.stream_info(spec.stream)).state.last_seq or 0)
        handlers = DeadLetters(IngestReports(jobs.ctx), TaskReports(jobs.ctx))
        monitor = DeadLetterMonitor(
            nc=nc,
            js=js,
            queues=[
                (streams.ingest_queue(settings), handlers.ingest),
                (spec, handlers.extract),
            ],
        )
        advisory = json.dumps({"stream": spec.stream, "stream_seq": seq, "deliveries": 1})
        async with postgres_down(own_postgres):
            handling = asyncio.create_task(
                monitor._on_advisory(Msg(nc, subject="advisory", data=advisory.encode()))
            )
            await asyncio.sleep(DOWN_SECONDS)
            assert not handling.done()  # waiting for the database, not given up
        await asyncio.wait_for(handling, timeout=60)
    finally:
        await nc.close()
    [task] = await jobflow.tasks(job_stub, job)
    assert task.status == pb.Task.FAILED
    assert "gave up after 1 attempts" in task.last_error
