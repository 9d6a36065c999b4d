"""Helpers the tests of the jobs service (and of the workers and the gateway) share:
declare and upload files, get a job ready, start it, pull messages off a work queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import nats
from google.protobuf import struct_pb2
from nats.aio.client import Client as NatsClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bytereview.core import streams
from bytereview.core.clients import Metadata
from bytereview.core.fair_pull import FairPuller
from bytereview.core.limits import MAX_FILES_PER_COMBINED_TASK
from bytereview.core.settings import Settings
from bytereview.core.storage import make_storage
from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs.domain.tasks.building import BUILDING
from services.jobs.store import models
from tests.conftest import USER
from tests.pdfs import text_pdf

if TYPE_CHECKING:
    # The async stubs exist only in the generated type stubs: import them under TYPE_CHECKING.
    from bytereview.jobs.v1.jobs_service_pb2_grpc import JobServiceAsyncStub as JobStub
    from bytereview.jobs.v1.worker_service_pb2_grpc import (
        JobWorkerServiceAsyncStub as WorkerStub,
    )

__all__ = [
    "FIELDS",
    "FINISHED",
    "PDF",
    "WORKER",
    "JobStub",
    "WorkerStub",
    "completed_job",
    "create_uploaded",
    "files",
    "finalized_job",
    "no_more_queued",
    "nothing_left_to_publish",
    "pull",
    "pull_exactly",
    "ready_job",
    "results",
    "start",
    "started_tasks",
    "tasks",
    "upload",
    "wait_for",
]

WORKER: Metadata = (("authorization", "Bearer dev-worker-token-not-for-production"),)
PDF = text_pdf(["Invoice Number: A-1", "Total: 10.00"])


def upload(settings: Settings, target: jobs_pb.UploadTarget, data: bytes) -> None:
    key = parse_qs(urlparse(target.url).query)["key"][0]
    with make_storage(settings).open_write(key) as handle:
        handle.write(data)


async def create_uploaded(
    job_stub: JobStub, settings: Settings, metadata: Metadata, files: dict[str, bytes]
) -> jobs_pb.CreateJobResponse:
    """A job declaring `files` (path -> bytes), each uploaded through its upload target."""
    created = await job_stub.CreateJob(
        jobs_pb.CreateJobRequest(
            files=[jobs_pb.DeclaredFile(path=p, size_bytes=len(d)) for p, d in files.items()]
        ),
        metadata=metadata,
    )
    for target in created.upload_targets:
        upload(settings, target, files[target.path])
    return created


async def started_tasks(
    job_stub: JobStub, settings: Settings, job: str, fields: list[pb.JobField], count: int
) -> list[str]:
    """Configure `fields`, start the job, and take up to `count` queued tasks off the queue."""
    await job_stub.ConfigureJob(jobs_pb.ConfigureJobRequest(name=job, fields=fields), metadata=USER)
    await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    return [
        extract_messages.ExtractTaskMessage.FromString(m).task
        for m in await pull(settings, streams.extract_queue(settings), count)
    ]


async def running_tasks(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    fields: list[pb.JobField],
    count: int,
) -> tuple[str, list[str]]:
    """A job of `count` files whose `count` tasks were all begun (in id order), as workers
    holding them would have."""
    job = await ready_job(job_stub, worker_stub, settings, files=count)
    tasks = sorted(await started_tasks(job_stub, settings, job, fields, count))
    assert len(tasks) == count
    got = await worker_stub.BeginTasks(
        worker_pb.BeginTasksRequest(tasks=[worker_pb.BeginTaskRequest(task=t) for t in tasks]),
        metadata=WORKER,
    )
    assert [b.proceed for b in got.tasks] == [True] * count
    return job, tasks


async def pull(settings: Settings, spec: streams.QueueSpec, count: int) -> list[bytes]:
    """Take up to `count` messages from a work queue (acked), as a worker would."""
    nc = await nats.connect(settings.nats_url)
    try:
        if spec.fair:
            return await _pull_lanes(nc, spec, count)
        sub = await nc.jetstream().pull_subscribe_bind(spec.durable, stream=spec.stream)
        out: list[bytes] = []
        # The relay publishes shortly after commit, maybe in several batches: keep pulling
        # until `count` arrived or nothing more comes for a while.
        while len(out) < count:
            try:
                msgs = await sub.fetch(count - len(out), timeout=3)
            except TimeoutError:  # nats raises both its own and the builtin one
                break
            for msg in msgs:
                out.append(msg.data)
                await msg.ack()
        await sub.unsubscribe()
        return out
    finally:
        # flush + close, not drain: draining waits out the pull request still open on the
        # server (30 s) before it gives up.
        await nc.flush()
        await nc.close()


async def pull_exactly(
    settings: Settings, spec: streams.QueueSpec, count: int, *, timeout: float = 30
) -> list[bytes]:
    """Take `count` messages off a work queue (acked) and prove that no other was queued
    (`no_more_queued`), without waiting out `pull`'s quiet period (3 s) for a message that
    never comes."""
    out: list[bytes] = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            out += await pull(settings, spec, count - len(out))
    await no_more_queued(settings, spec)
    return out


async def no_more_queued(settings: Settings, spec: streams.QueueSpec) -> None:
    """Fail if the queue holds a message nobody took: once the jobs service has nothing left
    to publish (`nothing_left_to_publish`), a work-queue stream that nothing else pulls from
    holds only messages still unacked or never pulled (it drops one when it is acked)."""
    async with asyncio.timeout(30):
        await nothing_left_to_publish(settings)
    nc = await nats.connect(settings.nats_url)
    try:
        # The acks went out before `pull` closed its connection; the server drops the
        # acked messages from the stream a moment after.
        deadline = time.monotonic() + 5
        while True:
            counts = await streams.queue_counts(nc.jetstream(), spec.stream)
            left = 0 if counts is None else counts.messages
            if left == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    finally:
        await nc.close()
    assert left == 0, f"{left} message(s) left on {spec.stream} that no one expected"


async def nothing_left_to_publish(settings: Settings) -> None:
    """Wait until the jobs service owes no message: every outbox row published, every
    started job's tasks built, no cancel/retry left to settle."""
    engine = create_async_engine(settings.database_url)
    table = models.OutboxMessage
    owed = select(
        select(func.count()).select_from(table).where(table.sent_at.is_(None)).scalar_subquery()
        + select(func.count())
        .select_from(models.Job)
        .where(
            (models.Job.settle_due != "")
            | (models.Job.status.in_(BUILDING) & (models.Job.tasks_built < models.Job.tasks_total))
        )
        .scalar_subquery()
    )
    try:
        while True:
            async with engine.connect() as conn:
                if not await conn.scalar(owed):
                    return
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()


async def _pull_lanes(nc: NatsClient, spec: streams.QueueSpec, count: int) -> list[bytes]:
    """`pull` from a fair queue: lane by lane, the way its workers pull."""
    puller = FairPuller(nc=nc, js=nc.jetstream(), spec=spec)
    out: list[bytes] = []
    while len(out) < count:
        msgs = await puller.fetch(count - len(out), (), wait=3)
        if not msgs:
            break
        for msg in msgs:
            out.append(msg.data)
            await msg.ack()
    return out


async def ready_job(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, files: int = 1
) -> str:
    """A job of `files` one-page PDFs in two folders, uploaded and analysed: READY."""
    pages = {f"folder{i % 2}/doc{i}.pdf": 1 for i in range(files)}
    return await analysed_job(job_stub, worker_stub, settings, pages)


async def analysed_job(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    pages: dict[str, int],
    *,
    display_name: str = "test",
    fields: Sequence[pb.JobField] = (),
    task_mode: pb.TaskMode.ValueType = pb.TASK_MODE_INDIVIDUAL,
) -> str:
    """A READY job of one PDF per path, each uploaded and analysed with its page count;
    with `fields`, configured to extract them in `task_mode`."""
    created = await job_stub.CreateJob(
        jobs_pb.CreateJobRequest(
            display_name=display_name,
            files=[jobs_pb.DeclaredFile(path=p, size_bytes=len(PDF)) for p in pages],
        ),
        metadata=USER,
    )
    for target in created.upload_targets:
        upload(settings, target, PDF)
    await job_stub.FinalizeUploads(
        jobs_pb.FinalizeUploadsRequest(name=created.job.name), metadata=USER
    )
    for target in created.upload_targets:
        await worker_stub.ReportFileAnalysis(
            worker_pb.ReportFileAnalysisRequest(
                file=target.file,
                status=pb.SourceFile.READY,
                media_type="application/pdf",
                size_bytes=len(PDF),
                page_count=pages[target.path],
            ),
            metadata=WORKER,
        )
    if fields:
        await job_stub.ConfigureJob(
            jobs_pb.ConfigureJobRequest(
                name=created.job.name, fields=list(fields), task_mode=task_mode
            ),
            metadata=USER,
        )
    return created.job.name


def one_folder_too_many() -> dict[str, int]:
    """Page counts of a folder (`scans`) of one file more than a combined task may hold, and
    of another folder of one file."""
    pages = {f"scans/{i:04d}.pdf": 1 for i in range(MAX_FILES_PER_COMBINED_TASK + 1)}
    pages["receipts/a.pdf"] = 1
    return pages


async def completed_job(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, files: int = 2
) -> str:
    """A job of `files` files whose every task reported a result: COMPLETED."""
    job = await ready_job(job_stub, worker_stub, settings, files=files)
    fields = [
        pb.JobField(name="number", data_type="text"),
        pb.JobField(name="total", data_type="currency"),
    ]
    # Exactly its `files` tasks (one per file): pulling more would wait out pull's quiet
    # period (3 s) for messages that never come, in every test that needs a completed job.
    tasks = await started_tasks(job_stub, settings, job, fields, files)
    assert len(tasks) == files
    for i, task in enumerate(sorted(tasks)):
        await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
        values = struct_pb2.Struct()
        # Money as the extractors store it: a decimal string, here a refund.
        values.update({"number": f'=HYPERLINK("x") {i}', "total": f"-{10.5 + i:.2f}"})
        await worker_stub.ReportTaskResult(
            worker_pb.ReportTaskResultRequest(task=task, values=values), metadata=WORKER
        )
    return job


# Driving a job end to end through the public API (the reliability tests).
FIELDS = [
    pb.JobField(name="invoice_number", data_type="text", instruction="the invoice number"),
    pb.JobField(name="total", data_type="currency"),
]
FINISHED = frozenset({pb.Job.COMPLETED, pb.Job.PARTIALLY_COMPLETED, pb.Job.FAILED})


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


async def lock_waiter(engine: AsyncEngine, like: str) -> str:
    """The query of a backend waiting for a row lock whose text matches `like` (PostgreSQL),
    once one is."""
    async with asyncio.timeout(10):
        while True:
            async with engine.connect() as conn:
                found = await conn.scalar(
                    text(
                        "SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE :like"
                    ),
                    {"like": like},
                )
            if found:
                return str(found)
            await asyncio.sleep(0.02)
