"""A job whose tasks are held (the extract workers wait out the model's outage, or its
refusal of the platform's settings) tells its user why: WatchJob's `job.held` message when it
changes, and JobProgress.waiting_on. The workers' word comes from their load heartbeats on
NATS, published here as a waiting worker publishes them (worker_runtime)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import grpc
import nats
from google.protobuf import struct_pb2

from bytereview.core import streams
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs.domain.jobs.held_tasks import (
    MODEL_DOWN,
    MODEL_REFUSES,
    PLATFORM,
    QUOTA,
    told_to_users,
)
from tests.conftest import USER
from tests.services.jobs.helpers import WORKER, ready_job, started_tasks

if TYPE_CHECKING:
    from bytereview.core.settings import Settings
    from tests.services.jobs.helpers import JobStub, WorkerStub

EOF_: Any = getattr(grpc.aio, "EOF")  # noqa: B009
REFUSED = "the model (gemini:gemini-2.5-flash): credentials rejected"


def test_the_workers_words_are_told_in_the_users_terms() -> None:
    assert told_to_users(
        [
            REFUSED,
            "the model (gemini:gemini-2.5-flash)",  # down: 502/503, unreachable
            "the model (gemini:gemini-2.5-flash): model not found",
            "the model's rate limits",
            "the shared model quota",
            "the jobs service",
            "",
        ]
    ) == [MODEL_REFUSES, MODEL_DOWN, QUOTA, PLATFORM]
    # Nothing of the platform's own set-up reaches the user: not the model, not the refusal.
    assert not any("gemini" in line or "credentials" in line for line in told_to_users([REFUSED]))


async def _beat(settings: Settings, waiting_on: list[str]) -> None:
    durable = streams.extract_queue(settings).durable
    beat = {"pod": "extract-0", "inflight": 1, "waiting": len(waiting_on), "waiting_on": waiting_on}
    nc = await nats.connect(settings.nats_url)
    try:
        await nc.publish(
            f"{streams.WORKER_LOAD_SUBJECT}.{durable}.extract-0", json.dumps(beat).encode()
        )
        await nc.flush()
    finally:
        await nc.close()


async def test_a_running_jobs_watch_and_progress_say_why_its_tasks_are_held(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=1)
    fields = [pb.JobField(name="number", data_type="text")]
    [task] = await started_tasks(job_stub, settings, job, fields, 1)
    await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
    call = job_stub.WatchJob(jobs_pb.WatchJobRequest(name=job), metadata=USER)

    async def next_held() -> pb.JobEvent:
        while True:
            event = await asyncio.wait_for(call.read(), timeout=15)
            assert isinstance(event, pb.JobEvent)
            if event.kind == "job.held":
                return event

    async def progress() -> jobs_pb.JobProgress:
        request = jobs_pb.GetJobProgressRequest(name=job)
        return await job_stub.GetJobProgress(request, metadata=USER)

    snapshot = await asyncio.wait_for(call.read(), timeout=5)
    assert isinstance(snapshot, pb.JobEvent)
    assert (snapshot.kind, snapshot.job_status) == ("job.snapshot", pb.Job.RUNNING)
    assert not (await progress()).waiting_on

    await _beat(settings, [REFUSED])
    held = await next_held()
    assert (held.message, held.job_status) == (MODEL_REFUSES, pb.Job.RUNNING)
    assert held.sequence == snapshot.sequence  # the resume point: no event came between
    assert list((await progress()).waiting_on) == [MODEL_REFUSES]

    await _beat(settings, [])  # the operator fixed the key: nothing waits
    assert (await next_held()).message == ""
    assert not (await progress()).waiting_on

    values = struct_pb2.Struct()
    values.update({"number": "42"})
    await worker_stub.ReportTaskResult(
        worker_pb.ReportTaskResultRequest(task=task, values=values), metadata=WORKER
    )
    rest: list[pb.JobEvent] = []
    while (event := await asyncio.wait_for(call.read(), timeout=10)) is not EOF_:
        assert isinstance(event, pb.JobEvent)
        rest.append(event)
    assert rest[-1].to_status == "COMPLETED"
    # Readings of the pool, not things that happened to the job: never in its trail.
    trail = await job_stub.ListJobEvents(
        jobs_pb.ListJobEventsRequest(parent=job, page_size=1000), metadata=USER
    )
    assert "job.held" not in {e.kind for e in trail.events}
