"""The extract worker through real NATS and the real jobs service, with both extractors.

Gemini is the server in tests/gemini_standin.py, reached by the real google-genai SDK.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import grpc
import nats
import pytest
from nats.aio.msg import Msg
from prometheus_client import REGISTRY

from bytereview.core import Settings, streams, worker_runtime
from bytereview.core.pdf_process import PdfBounds
from bytereview.core.storage import make_storage
from bytereview.extract.v1 import extract_service_pb2 as extract_pb
from bytereview.extract.v1 import extract_service_pb2_grpc as extract_grpc
from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.jobs.v1 import admin_service_pb2 as admin_pb
from bytereview.jobs.v1 import admin_service_pb2_grpc as admin_grpc
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from services.extract import serve
from services.extract.trust.assess import assess
from services.jobs import RunningJobsService
from services.jobs.domain.results import values as jobs_values
from tests.conftest import USER
from tests.gemini_standin import (
    API_KEY,
    Reply,
    RunningStandIn,
    bad_request,
    consumer_suspended,
    key_invalid,
    service_disabled,
)
from tests.services.jobs.helpers import ready_job

if TYPE_CHECKING:
    from bytereview.jobs.v1.admin_service_pb2_grpc import AdminServiceAsyncStub as AdminStub
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
FIELDS = [
    pb.JobField(name="invoice_number", data_type="text", instruction="the invoice number"),
    pb.JobField(name="total", data_type="currency"),
]
ANSWER = {"invoice_number": "A-1", "total": 10.0}
# What the platform stores: money as a decimal string with its cents.
STORED = {"invoice_number": "A-1", "total": "10.00"}


def worker_settings(settings: Settings, jobs: RunningJobsService, **changes: object) -> Settings:
    return settings.model_copy(
        update={
            "jobs_addr": f"127.0.0.1:{jobs.port}",
            # Port 0: the server binds a free port itself (running_worker reports it).
            "extract_addr": "127.0.0.1:0",
            **changes,
        }
    )


def gemini_settings(
    settings: Settings, jobs: RunningJobsService, gemini: RunningStandIn, **changes: object
) -> Settings:
    from pydantic import SecretStr

    return worker_settings(
        settings,
        jobs,
        gemini_api_key=SecretStr(API_KEY),
        gemini_base_url=gemini.base_url,
        gemini_model="gemini-test",
        **changes,
    )


@asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[asyncio.Future[int]]:
    """The worker, running; the future is the ExtractService's port once it serves."""
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(settings, stop, listening=port.set_result))
    try:
        yield port
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def start(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    files: int = 1,
    mode: pb.TaskMode.ValueType = pb.TASK_MODE_INDIVIDUAL,
) -> str:
    job = await ready_job(job_stub, worker_stub, settings, files=files)
    await job_stub.ConfigureJob(
        jobs_pb.ConfigureJobRequest(name=job, fields=FIELDS, task_mode=mode), metadata=USER
    )
    await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    return job


async def completed_by_gemini(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
    files: int = 1,
) -> str:
    """A job of `files` files started and run by the extract worker against the Gemini
    stand-in (answering as scripted) until COMPLETED."""
    job = await start(job_stub, worker_stub, settings, files=files)
    async with running_worker(gemini_settings(settings, jobs, gemini)):
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
    return job


async def finished(job_stub: JobStub, job: str, timeout: float = 60) -> pb.Job:
    done = {pb.Job.COMPLETED, pb.Job.PARTIALLY_COMPLETED, pb.Job.FAILED}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
        if got.status in done:
            return got
        await asyncio.sleep(0.2)
    raise AssertionError(f"{job} is still {pb.Job.Status.Name(got.status)}")


async def results(job_stub: JobStub, job: str) -> list[pb.Result]:
    got = await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    return list(got.results)


async def tasks(job_stub: JobStub, job: str) -> list[pb.Task]:
    got = await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)
    return list(got.tasks)


async def test_offline_extractor_fills_every_file(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    job = await start(job_stub, worker_stub, settings, files=3)
    async with running_worker(worker_settings(settings, jobs)):
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
    found = await results(job_stub, job)
    assert len(found) == 3
    for result in found:
        assert dict(result.values) == STORED
        assert result.extractor == "offline"


async def test_the_evidence_check_runs_off_the_event_loop(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check of a long document's evidence is seconds of CPU: run on the event loop, it
    held up every other task's heartbeats, acks and reports. It runs in a thread."""
    threads: list[int] = []

    def recorded(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return assess(*args)

    monkeypatch.setattr("services.extract.checking.assess", recorded)
    job = await start(job_stub, worker_stub, settings, files=2)
    async with running_worker(worker_settings(settings, jobs)):
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
    assert len(threads) == 2
    assert threading.get_ident() not in threads


async def test_combined_mode_gives_one_result_per_folder(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    job = await start(job_stub, worker_stub, settings, files=4, mode=pb.TASK_MODE_COMBINED)
    async with running_worker(worker_settings(settings, jobs)):
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
    found = await results(job_stub, job)
    assert len(found) == 2  # folder0 and folder1, two files each
    for result in found:
        assert len(result.files) == 2
        assert dict(result.values) == STORED
        assert set(result.value_sources) == {"invoice_number", "total"}
        assert set(result.value_sources.values()) <= set(result.files)


async def test_gemini_results_carry_tokens(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
) -> None:
    gemini.state.default = lambda seen: Reply(values=ANSWER)
    job = await completed_by_gemini(job_stub, worker_stub, settings, jobs, gemini, files=2)
    found = await results(job_stub, job)
    assert [dict(r.values) for r in found] == [STORED, STORED]
    assert all(r.extractor == "gemini:gemini-test" for r in found)
    assert all(r.input_tokens == 250 and r.output_tokens > 0 for r in found)
    assert len(gemini.state.seen) == 2
    # The job's active system prompt went with every call.
    assert all(seen.system_prompt for seen in gemini.state.seen)


@pytest.mark.parametrize(
    ("script", "max_deliver", "outcome", "calls", "error"),
    [
        ([Reply(status=500), Reply(values=ANSWER)], 5, pb.Task.SUCCEEDED, 2, ""),
        ([Reply(text="{oops"), Reply(values=ANSWER)], 1, pb.Task.SUCCEEDED, 2, ""),
        ([Reply(text="{oops"), Reply(text="[]")], 5, pb.Task.FAILED, 2, "not an object"),
        ([Reply(status=400)], 5, pb.Task.FAILED, 1, "refused the request (400)"),
        ([Reply(status=500)] * 2, 2, pb.Task.FAILED, 2, "Gemini error 500"),
        # The service unavailable (overloaded) three times with a single delivery allowed:
        # waited out in place, no attempt used.
        ([Reply(status=503)] * 3 + [Reply(values=ANSWER)], 1, pb.Task.SUCCEEDED, 4, ""),
        # The configured key refused (400 API_KEY_INVALID, 403 PERMISSION_DENIED): the
        # operator's to fix, never the task's failure; waited out, no attempt used.
        ([key_invalid()] * 3 + [Reply(values=ANSWER)], 1, pb.Task.SUCCEEDED, 4, ""),
        (
            [service_disabled(), consumer_suspended(API_KEY), Reply(values=ANSWER)],
            1,
            pb.Task.SUCCEEDED,
            3,
            "",
        ),
        # A 400 about the request itself (no reason about the key) fails it, as before.
        ([bad_request()], 5, pb.Task.FAILED, 1, "refused the request (400)"),
        # An answer cut at the output bound: failed at once, saying so (no second call).
        (
            [Reply(text='{"invoice_number": "A-', finish_reason="MAX_TOKENS")],
            5,
            pb.Task.FAILED,
            1,
            "(finish reason MAX_TOKENS)",
        ),
        # Three 429s with a single delivery allowed: the rate limits do not use it up.
        (
            [Reply(status=429, retry_after=0.2)] * 3 + [Reply(values=ANSWER)],
            1,
            pb.Task.SUCCEEDED,
            4,
            "",
        ),
    ],
    ids=[
        "5xx-retried",
        "bad-json-once",
        "bad-json-twice",
        "4xx",
        "5xx-exhausted",
        "503-waited-out",
        "400-key-invalid-waited-out",
        "403-waited-out",
        "400-bad-request",
        "max-tokens",
        "429",
    ],
)
async def test_error_classes(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
    script: list[Reply],
    max_deliver: int,
    outcome: pb.Task.Status.ValueType,
    calls: int,
    error: str,
) -> None:
    gemini.state.script(*script)
    gemini.state.default = lambda seen: Reply(status=500)  # nothing beyond the script
    # The queue is declared by the jobs service with the fixture's MaxDeliver; the worker
    # classifies by the attempt number JetStream reports, against its own setting.
    job = await start(job_stub, worker_stub, settings)
    cfg = gemini_settings(settings, jobs, gemini, max_deliver=max_deliver)
    async with running_worker(cfg):
        await finished(job_stub, job)
    [task] = await tasks(job_stub, job)
    assert task.status == outcome, task.last_error
    assert error in task.last_error
    assert len(gemini.state.seen) == calls
    assert len(await results(job_stub, job)) == (1 if outcome == pb.Task.SUCCEEDED else 0)


async def _extract_workers(admin: AdminStub) -> list[admin_pb.PoolWorker]:
    stats = await admin.GetQueueStats(admin_pb.GetQueueStatsRequest(), metadata=USER)
    [pool] = [p for p in stats.pools if p.pool == "extract"]
    return list(pool.workers)


async def test_a_rejected_key_holds_the_task_until_the_key_works(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
    channel: grpc.aio.Channel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The service refuses the worker's key (400 API_KEY_INVALID, the real answer) until the
    operator fixes it: the task is not failed and keeps its single attempt, the admin view
    shows the worker waiting on the credentials, the worker says why once at error level
    (without the key), and the task completes once the key is accepted."""
    caplog.set_level(logging.INFO, logger="services.extract.model.refused_settings")
    gemini.state.api_key = "the-key-the-service-wants"
    gemini.state.default = lambda seen: Reply(values=ANSWER)
    admin: AdminStub = admin_grpc.AdminServiceStub(channel)
    job = await start(job_stub, worker_stub, settings)
    async with running_worker(gemini_settings(settings, jobs, gemini, max_deliver=1)):
        for _ in range(150):  # heartbeats every 2 s
            workers = await _extract_workers(admin)
            if workers and workers[0].waiting:
                break
            await asyncio.sleep(0.1)
        [worker] = workers
        assert (worker.inflight, worker.waiting) == (1, 1)
        assert list(worker.waiting_on) == ["the model (gemini:gemini-test): credentials rejected"]
        [task] = await tasks(job_stub, job)
        assert (task.status, task.attempts, task.last_error) == (pb.Task.RUNNING, 1, "")
        assert not gemini.state.seen  # refused at the door, never a model call

        gemini.state.api_key = API_KEY  # the operator fixed it
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
    [task] = await tasks(job_stub, job)
    assert (task.status, task.attempts) == (pb.Task.SUCCEEDED, 1)
    assert [dict(r.values) for r in await results(job_stub, job)] == [STORED]
    said = [r for r in caplog.records if "refused the platform's settings" in r.getMessage()]
    assert [r.levelname for r in said] == ["ERROR"]
    assert "API_KEY_INVALID" in said[0].getMessage()
    assert "fix the API key secret" in said[0].getMessage()
    assert not [r for r in caplog.records if API_KEY in r.getMessage()]
    assert any("accepts the platform's settings again" in r.getMessage() for r in caplog.records)


async def test_preview_extracts_one_file_synchronously(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=1)
    files = await job_stub.ListFiles(jobs_pb.ListFilesRequest(parent=job), metadata=USER)
    cfg = worker_settings(settings, jobs)
    async with running_worker(cfg) as port:
        address = f"127.0.0.1:{await asyncio.wait_for(port, timeout=30)}"
        async with grpc.aio.insecure_channel(address) as ch:
            stub = extract_grpc.ExtractServiceStub(ch)
            got = await stub.PreviewExtraction(
                extract_pb.PreviewExtractionRequest(file=files.files[0].name, fields=FIELDS),
                metadata=USER,
                timeout=30,
            )
            assert dict(got.values) == STORED
            assert got.extractor == "offline"
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.PreviewExtraction(
                    extract_pb.PreviewExtractionRequest(file=files.files[0].name), metadata=USER
                )
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            # Without a credential: UNAUTHENTICATED, before anything of the request is judged.
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.PreviewExtraction(
                    extract_pb.PreviewExtractionRequest(file=files.files[0].name)
                )
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_redelivered_task_gives_one_result(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    job = await start(job_stub, worker_stub, settings)
    cfg = worker_settings(settings, jobs)
    async with running_worker(cfg):
        await finished(job_stub, job)
        [task] = await tasks(job_stub, job)
        # The same task message again, as JetStream sends it when an ack was lost.
        nc = await nats.connect(settings.nats_url)
        js = nc.jetstream()
        spec = streams.extract_queue(settings)
        message = extract_messages.ExtractTaskMessage(task=task.name).SerializeToString()
        await js.publish(spec.subject, message, stream=spec.stream)
        for _ in range(100):
            pending, ack_pending = await streams.consumer_lag(js, spec)
            if pending == ack_pending == 0:
                break
            await asyncio.sleep(0.1)
        await nc.close()
    assert pending == ack_pending == 0
    found = await results(job_stub, job)
    assert len(found) == 1
    assert (await tasks(job_stub, job))[0].status == pb.Task.SUCCEEDED


async def model_called(gemini: RunningStandIn) -> None:
    """Until the worker's first call reached the model (within 30 s)."""
    for _ in range(300):
        if gemini.state.seen:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the worker never called the model")


@contextmanager
def worker_process(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    secret = settings.gemini_api_key
    env.update(
        {
            "BYTEREVIEW_ENV": "dev",
            "BYTEREVIEW_NATS_URL": settings.nats_url,
            "BYTEREVIEW_JOBS_ADDR": settings.jobs_addr,
            "BYTEREVIEW_EXTRACT_ADDR": settings.extract_addr,
            "BYTEREVIEW_STORAGE_DIR": str(settings.storage_dir),
            "BYTEREVIEW_DATA_DIR": str(settings.data_dir),
            "BYTEREVIEW_GEMINI_API_KEY": secret.get_secret_value() if secret else "",
            "BYTEREVIEW_GEMINI_BASE_URL": settings.gemini_base_url,
            "BYTEREVIEW_DRAIN_GRACE_SECONDS": "10",
        }
    )
    process = subprocess.Popen([sys.executable, "-m", "launcher.cli", "extract"], env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_sigterm_drains_the_call_in_flight(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
) -> None:
    def slow(seen: object) -> Reply:
        time.sleep(2)  # the stand-in serves each request on its own thread
        return Reply(values=ANSWER)

    gemini.state.default = slow
    job = await start(job_stub, worker_stub, settings)
    with worker_process(gemini_settings(settings, jobs, gemini)) as process:
        await model_called(gemini)
        process.send_signal(signal.SIGTERM)  # mid-call
        code = await asyncio.to_thread(process.wait, 30)
    assert code == 0
    assert (await finished(job_stub, job, timeout=5)).status == pb.Job.COMPLETED
    assert len(await results(job_stub, job)) == 1
    assert len(gemini.state.seen) == 1


async def test_tasks_fetched_together_begin_and_report_in_batches(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    """#18: the tasks one fetch brings are begun in one call and their results reported in
    few, each applied once (the job's trail shows one progress event per batch)."""
    job = await start(job_stub, worker_stub, settings, files=12)
    cfg = worker_settings(settings, jobs, bench_extractor="noop", extract_concurrency=16)
    async with running_worker(cfg):
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
    found = await results(job_stub, job)
    assert len(found) == 12
    assert len({r.task for r in found}) == 12
    assert all(r.extractor == "noop-bench" for r in found)
    assert all(t.attempts == 1 for t in await tasks(job_stub, job))
    got = await job_stub.ListJobEvents(
        jobs_pb.ListJobEventsRequest(parent=job, page_size=500), metadata=USER
    )
    progress = [e for e in got.events if e.kind == "tasks.progress"]
    started = [e for e in progress if e.to_status == "RUNNING"]
    succeeded = [e for e in progress if e.to_status == "SUCCEEDED"]
    # Starts are events only until the job runs (TaskReports.begin_tasks): the batch that
    # set it running says how many it began, later batches are not events (on a loaded
    # machine the 12 messages come in more than one fetch).
    assert started
    assert sum(int(e.message.split()[0]) for e in started) <= 12
    assert sum(int(e.message.split()[0]) for e in succeeded) == 12
    # Fewer calls than tasks (the relay may hand the 12 messages over in more than one
    # publish burst, so not necessarily one call each way).
    assert len(started) < 12
    assert len(succeeded) < 12
    assert not [e for e in got.events if e.kind == "task.status"]


async def test_failures_of_tasks_fetched_together_are_reported_in_batches(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    """#18: failures go batched like results (ReportTaskFailures): each applied once, fewer
    calls than tasks (one progress event per batch, none per task), and the job ends."""
    job = await start(job_stub, worker_stub, settings, files=12)
    cfg = worker_settings(settings, jobs, bench_extractor="noop-fail", extract_concurrency=16)
    async with running_worker(cfg):
        got = await finished(job_stub, job)
    assert (got.status, got.counters.tasks_failed) == (pb.Job.FAILED, 12)
    listed = await tasks(job_stub, job)
    assert all(t.status == pb.Task.FAILED and t.attempts == 1 for t in listed)
    assert all("failing on purpose" in t.last_error for t in listed)
    events = await job_stub.ListJobEvents(
        jobs_pb.ListJobEventsRequest(parent=job, page_size=500), metadata=USER
    )
    failed = [e for e in events.events if e.kind == "tasks.progress" and e.to_status == "FAILED"]
    assert sum(int(e.message.split()[0]) for e in failed) == 12
    assert len(failed) < 12
    assert not [e for e in events.events if e.kind == "task.status"]


def delete_uploads(settings: Settings, job: str) -> None:
    """The job's files gone from storage after it started (deleted by hand, or lost)."""
    removed = make_storage(settings).delete_prefix(f"{job}/")
    assert removed > 0


async def test_a_file_gone_from_storage_fails_its_task_at_once_saying_so(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    """No attempt can read a deleted file: the task fails on its first attempt with the
    reason, not as an internal error retried until its attempts run out."""
    job = await start(job_stub, worker_stub, settings)
    delete_uploads(settings, job)
    async with running_worker(worker_settings(settings, jobs)):
        assert (await finished(job_stub, job)).status == pb.Job.FAILED
    [task] = await tasks(job_stub, job)
    assert task.attempts == 1
    assert "no longer in storage" in task.last_error


async def test_evidence_of_a_file_gone_from_storage_stays_unverified(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    """An extractor that answered without the file (the no-op bench extractor here; a
    file deleted between extraction and verification alike) keeps its result: the
    platform's own check of the evidence finds no pages, so nothing is verified."""
    job = await start(job_stub, worker_stub, settings)
    delete_uploads(settings, job)
    async with running_worker(worker_settings(settings, jobs, bench_extractor="noop")):
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
    [result] = await results(job_stub, job)
    assert result.extractor == "noop-bench"
    assert not any(a.verified for a in result.assessments.values())


async def test_a_hostile_pdf_fails_its_own_task_and_the_job_goes_on(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A page pdfium would expand for minutes (tests/hostile_documents.py) in one of three
    files: that task fails on its first attempt saying why, the other two complete."""
    from services.extract.reading import pages as reading
    from tests.hostile_documents import xobject_bomb

    monkeypatch.setattr(reading, "PDF_BOUNDS", PdfBounds(seconds=3))
    job = await start(job_stub, worker_stub, settings, files=3)
    storage = make_storage(settings)
    [bomb, *_] = sorted(k for k in storage.list_keys(f"{job}/") if "/uploads/" in k)
    with storage.open_write(bomb) as handle:
        handle.write(xobject_bomb(12))
    async with running_worker(worker_settings(settings, jobs)):
        assert (await finished(job_stub, job)).status == pb.Job.PARTIALLY_COMPLETED
    failed = [t for t in await tasks(job_stub, job) if t.status == pb.Task.FAILED]
    assert [t.attempts for t in failed] == [1]
    assert "page 1 cannot be read" in failed[0].last_error
    assert len(await results(job_stub, job)) == 2


def first_delivery_unheard(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first delivery's in-progress acks never reach NATS (a partition between that
    handler and the server, a frozen process): its ack deadline passes and JetStream
    delivers the message again while the handler still runs. Later deliveries are heard."""
    keep_alive = worker_runtime.Worker._ack_in_progress
    deliveries = itertools.count()

    async def unheard_first(self: worker_runtime.Worker, msg: Msg) -> None:
        if next(deliveries) == 0:
            await asyncio.Event().wait()  # silent until its handler ends
        await keep_alive(self, msg)

    monkeypatch.setattr(worker_runtime.Worker, "_ack_in_progress", unheard_first)


async def ack_pending(settings: Settings) -> int:
    """The extract queue's messages delivered and not yet settled."""
    nc = await nats.connect(settings.nats_url)
    try:
        return (await streams.consumer_lag(nc.jetstream(), streams.extract_queue(settings)))[1]
    finally:
        await nc.close()


@pytest.mark.parametrize(
    "stale",
    [
        pytest.param(Reply(status=400), id="failure"),  # the model's 400: permanent
        # Refused by the jobs service (out of step with the worker's bounds in a rolling
        # upgrade: MAX_VALUE_CHARS below).
        pytest.param(Reply(values={**ANSWER, "invoice_number": "x" * 50}), id="refused-result"),
    ],
)
async def test_a_stalled_attempts_late_report_leaves_the_task_to_its_next_attempt(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
    monkeypatch: pytest.MonkeyPatch,
    stale: Reply,
) -> None:
    """The first delivery's model call stalls past its ack deadline; the message is
    delivered again and its attempt 2 calls the model. Then the first answers `stale`: its
    report (of attempt 1) must neither fail nor requeue the run in progress, nor settle the
    message that run's delivery holds (JetStream settles a message, not a delivery: a term
    here would leave nothing to redeliver if the second worker died). The second attempt's
    answer then completes the job and settles the message."""
    monkeypatch.setattr(jobs_values, "MAX_VALUE_CHARS", 20)  # the jobs service's bound only
    first_delivery_unheard(monkeypatch)
    first, second = threading.Event(), threading.Event()

    def answers(seen: object) -> Reply:  # the stand-in serves each request on its own thread
        if len(gemini.state.seen) == 1:
            first.wait(30)
            return stale
        second.wait(30)
        return Reply(values=ANSWER)

    gemini.state.default = answers
    job = await start(job_stub, worker_stub, settings)
    beats: asyncio.Queue[int] = asyncio.Queue()

    async def heard(msg: Msg) -> None:
        beats.put_nowait(json.loads(msg.data)["inflight"])

    nc = await nats.connect(settings.nats_url)
    await nc.subscribe(f"{streams.WORKER_LOAD_SUBJECT}.>", cb=heard)
    async with running_worker(gemini_settings(settings, jobs, gemini)):
        for _ in range(300):  # the ack deadline (5 s) passes; the second delivery runs
            if len(gemini.state.seen) == 2:
                break
            await asyncio.sleep(0.1)
        [task] = await tasks(job_stub, job)
        assert (len(gemini.state.seen), task.status, task.attempts) == (2, pb.Task.RUNNING, 2)
        # The worker's heartbeat (every 2 s) says both handlers run; once the first has
        # reported and ended, one: the second's.
        while await asyncio.wait_for(beats.get(), timeout=10) != 2:
            pass
        first.set()
        while await asyncio.wait_for(beats.get(), timeout=10) != 1:
            pass
        [task] = await tasks(job_stub, job)
        assert (task.status, task.attempts, task.last_error) == (pb.Task.RUNNING, 2, "")
        assert await ack_pending(settings) == 1  # still the second delivery's to settle
        second.set()
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
        for _ in range(100):
            if await ack_pending(settings) == 0:
                break
            await asyncio.sleep(0.1)
    await nc.close()
    assert await ack_pending(settings) == 0
    assert len(gemini.state.seen) == 2


async def test_a_result_the_jobs_service_refuses_fails_its_task_alone_without_a_retry(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker out of step with the jobs service (a rolling upgrade that tightened the
    jobs service's value bound before the workers'): the result it refuses fails its task
    saying why, the worker settles that message (no redelivery, no second model call), and
    the results reported with it apply. It used to refuse the whole batch: every task of it
    was redelivered and extracted again, to a dead letter."""
    monkeypatch.setattr(jobs_values, "MAX_VALUE_CHARS", 20)  # the jobs service's bound only
    long = {**ANSWER, "invoice_number": "x" * 50}  # within the worker's own bound
    gemini.state.script(Reply(values=ANSWER), Reply(values=long), Reply(values=ANSWER))
    gemini.state.default = lambda seen: Reply(status=500)  # nothing beyond the script
    job = await start(job_stub, worker_stub, settings, files=3)
    cfg = gemini_settings(settings, jobs, gemini, max_deliver=2, extract_concurrency=4)
    before = {o: _counted(o) for o in ("succeeded", "failed")}
    async with running_worker(cfg):
        got = await finished(job_stub, job)
    # The worker counts it failed: it read the refusal, not taken it for a repeat.
    assert {o: _counted(o) - n for o, n in before.items()} == {"succeeded": 2, "failed": 1}
    assert (got.status, got.counters.tasks_failed) == (pb.Job.PARTIALLY_COMPLETED, 1)
    listed = await tasks(job_stub, job)
    assert sorted(t.status for t in listed) == [pb.Task.SUCCEEDED] * 2 + [pb.Task.FAILED]
    assert all(t.attempts == 1 for t in listed)
    [refused] = [t for t in listed if t.status == pb.Task.FAILED]
    assert refused.last_error == (
        "the worker's result was refused: result.values.invoice_number must be at most 20"
        " characters"
    )
    assert len(gemini.state.seen) == 3
    assert [dict(r.values) for r in await results(job_stub, job)] == [STORED, STORED]


def _counted(outcome: str) -> float:
    """This process's extract workers' tasks of `outcome` so far (metrics.TASKS)."""
    got = REGISTRY.get_sample_value("bytereview_extract_tasks_total", {"outcome": outcome})
    return got or 0.0
