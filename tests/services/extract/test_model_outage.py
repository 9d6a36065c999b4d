"""Gemini down in a way a request's own failure looks like too (500s for every request):
the extract worker (real NATS, the real jobs service, the real google-genai SDK against the
stand-in) holds its tasks rather than fail them, and still fails a poisoned document's."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import grpc
import pytest

from bytereview.core import Settings
from bytereview.core.storage import make_storage
from bytereview.jobs.v1 import admin_service_pb2_grpc as admin_grpc
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs import RunningJobsService
from services.jobs.domain.jobs.held_tasks import MODEL_DOWN
from tests.conftest import USER
from tests.gemini_standin import Reply, RunningStandIn
from tests.services.extract.test_worker import (
    ANSWER,
    STORED,
    _extract_workers,
    finished,
    gemini_settings,
    results,
    running_worker,
    start,
    tasks,
)

if TYPE_CHECKING:
    from bytereview.jobs.v1.admin_service_pb2_grpc import AdminServiceAsyncStub as AdminStub
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
MARK = b"%POISONED"  # a PDF comment after %%EOF: the document stays valid


async def test_an_outage_holds_the_tasks_until_the_service_answers(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
    channel: grpc.aio.Channel,
) -> None:
    """The service answers 500 to every request, its health probe too, for longer than the
    tasks' two attempts would last: they stay RUNNING on their first attempt, the worker's
    heartbeat says it waits on the model and the job's progress tells the user the service
    is not answering; once it answers, the job completes, each task on its first attempt."""
    gemini.state.outage = Reply(status=500)
    gemini.state.default = lambda seen: Reply(values=ANSWER)
    admin: AdminStub = admin_grpc.AdminServiceStub(channel)
    job = await start(job_stub, worker_stub, settings, files=2)
    began = time.monotonic()
    async with running_worker(gemini_settings(settings, jobs, gemini, max_deliver=2)):
        for _ in range(300):  # heartbeats every 2 s; the waits back off from 0.5 s
            workers = await _extract_workers(admin)
            listed = await tasks(job_stub, job)
            if any(t.status == pb.Task.FAILED for t in listed):
                break  # the assertions below say how
            if len(gemini.state.seen) >= 6 and workers and workers[0].waiting == 2:
                break
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - began
        # Each task asked three times or more, with two attempts allowed: none used up.
        assert len(gemini.state.seen) >= 6
        assert [(t.status, t.attempts, t.last_error) for t in listed] == [
            (pb.Task.RUNNING, 1, "")
        ] * 2
        [worker] = workers
        assert (worker.inflight, worker.waiting) == (2, 2)
        assert list(worker.waiting_on) == ["the model (gemini:gemini-test)"]
        request = jobs_pb.GetJobProgressRequest(name=job)
        progress = await job_stub.GetJobProgress(request, metadata=USER)
        assert list(progress.waiting_on) == [MODEL_DOWN]
        # One probe at a time for the whole worker, each verdict standing 10 s.
        assert 1 <= len(gemini.state.probes) <= 2 + elapsed // 10

        gemini.state.outage = None  # the service is back
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
    listed = await tasks(job_stub, job)
    assert [(t.status, t.attempts) for t in listed] == [(pb.Task.SUCCEEDED, 1)] * 2
    assert [dict(r.values) for r in await results(job_stub, job)] == [STORED, STORED]


async def test_a_poisoned_document_still_fails_its_task_while_the_others_complete(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
) -> None:
    """The service answers 500 only to the request reading one document, and answers its
    health probe: that task's failure is its own, counted, and it fails after its two
    attempts; the other two tasks complete."""
    gemini.state.default = lambda seen: (
        Reply(status=500) if seen.reads(MARK) else Reply(values=ANSWER)
    )
    job = await start(job_stub, worker_stub, settings, files=3)
    storage = make_storage(settings)
    [poisoned, *_] = sorted(k for k in storage.list_keys(f"{job}/") if "/uploads/" in k)
    with storage.open_read(poisoned) as handle:
        data = handle.read()
    with storage.open_write(poisoned) as handle:
        handle.write(data + MARK)
    async with running_worker(gemini_settings(settings, jobs, gemini, max_deliver=2)):
        assert (await finished(job_stub, job)).status == pb.Job.PARTIALLY_COMPLETED
    listed = await tasks(job_stub, job)
    [failed] = [t for t in listed if t.status == pb.Task.FAILED]
    assert failed.attempts == 2
    assert failed.last_error.startswith("Gemini error 500: ")
    assert sorted(t.status for t in listed) == [pb.Task.SUCCEEDED] * 2 + [pb.Task.FAILED]
    assert [dict(r.values) for r in await results(job_stub, job)] == [STORED, STORED]
    assert len([s for s in gemini.state.seen if s.reads(MARK)]) == 2  # one per attempt
    assert gemini.state.probes  # the service was asked, and answered


async def test_a_stalled_service_holds_the_task_past_its_maximum_run_time(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
) -> None:
    """The service answers nothing within the client's timeout (1 s here), the probe
    neither, for longer than the task's maximum run time (4 s) and its single attempt: the
    calls that time out are the outage's time, not the task's, so it is held, not failed,
    and completes on its first attempt once the service answers."""
    gemini.state.outage = Reply(values=ANSWER, delay=5)
    gemini.state.default = lambda seen: Reply(values=ANSWER)
    job = await start(job_stub, worker_stub, settings)
    cfg = gemini_settings(
        settings,
        jobs,
        gemini,
        max_deliver=1,
        gemini_timeout_seconds=1.0,
        # Room for the task's own work around the calls (begin, read, report) on a busy
        # machine: less than the calls' time, which is what must not count.
        task_max_run_seconds=4.0,
    )
    async with running_worker(cfg):
        for _ in range(300):
            listed = await tasks(job_stub, job)
            if len(gemini.state.seen) >= 5 or any(t.status == pb.Task.FAILED for t in listed):
                break
            await asyncio.sleep(0.1)
        # Five calls of 1 s each, and a probe: more than the 4 s the task may run.
        assert len(gemini.state.seen) >= 5
        assert [(t.status, t.attempts, t.last_error) for t in listed] == [(pb.Task.RUNNING, 1, "")]
        gemini.state.outage = None
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
    [task] = await tasks(job_stub, job)
    assert (task.status, task.attempts) == (pb.Task.SUCCEEDED, 1)
