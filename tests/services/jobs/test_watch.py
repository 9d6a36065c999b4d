"""WatchJob starts with where the job stands, then its events, on both databases.

A client joining a running or finished job gets the job's status and counters as the first
message (a `job.snapshot` event) instead of nothing until the next change."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import struct_pb2

from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from tests.conftest import USER
from tests.services.jobs.helpers import WORKER, completed_job, ready_job, started_tasks

if TYPE_CHECKING:
    from bytereview.core.settings import Settings
    from tests.services.jobs.helpers import JobStub, WorkerStub

# grpc-stubs lacks aio.EOF, the sentinel a stream's read() returns at its end.
EOF: Any = getattr(grpc.aio, "EOF")  # noqa: B009
SNAPSHOT = "job.snapshot"


async def _trail(stub: JobStub, job: str) -> list[pb.JobEvent]:
    """The job's whole stored audit trail, oldest first."""
    got = await stub.ListJobEvents(
        jobs_pb.ListJobEventsRequest(parent=job, page_size=1000), metadata=USER
    )
    assert not got.next_page_token
    return list(got.events)


async def _whole_watch(stub: JobStub, job: str, after_sequence: int = 0) -> list[pb.JobEvent]:
    """Every message of a watch that ends by itself (the job is final)."""

    async def read() -> list[pb.JobEvent]:
        request = jobs_pb.WatchJobRequest(name=job, after_sequence=after_sequence)
        return [event async for event in stub.WatchJob(request, metadata=USER)]

    return await asyncio.wait_for(read(), timeout=10)


async def test_a_late_joiner_on_a_finished_job_gets_its_state_at_once(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await completed_job(job_stub, worker_stub, settings, files=2)
    trail = await _trail(job_stub, job)
    watched = await _whole_watch(job_stub, job)
    assert len(watched) == 1
    (state,) = watched
    assert (state.kind, state.job, state.subject, state.actor) == (SNAPSHOT, job, job, "system")
    assert (state.job_status, state.to_status) == (pb.Job.COMPLETED, "COMPLETED")
    counters = state.counters
    assert (counters.files_total, counters.files_ready, counters.files_failed) == (2, 2, 0)
    assert (counters.tasks_total, counters.tasks_succeeded, counters.tasks_failed) == (2, 2, 0)
    # Numbered where a resumed watch would go on: after the last stored event.
    assert state.sequence == trail[-1].sequence
    assert state.create_time.ToDatetime() >= trail[-1].create_time.ToDatetime()
    # A reading of the job, not something that happened to it: never stored in the trail.
    assert SNAPSHOT not in {e.kind for e in await _trail(job_stub, job)}


async def test_a_joiner_on_a_running_job_gets_its_state_then_later_events_in_order(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=2)
    fields = [pb.JobField(name="number", data_type="text")]
    tasks = sorted(await started_tasks(job_stub, settings, job, fields, 2))
    assert len(tasks) == 2
    before = await _trail(job_stub, job)
    call = job_stub.WatchJob(jobs_pb.WatchJobRequest(name=job), metadata=USER)
    state = await asyncio.wait_for(call.read(), timeout=5)
    assert isinstance(state, pb.JobEvent)
    assert state.kind == SNAPSHOT
    assert state.job_status == pb.Job.QUEUED
    assert (state.counters.tasks_total, state.counters.tasks_succeeded) == (2, 0)
    assert state.sequence == before[-1].sequence

    values = struct_pb2.Struct()
    values.update({"number": "42"})
    for task in tasks:
        await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
        await worker_stub.ReportTaskResult(
            worker_pb.ReportTaskResultRequest(task=task, values=values), metadata=WORKER
        )
    later: list[pb.JobEvent] = []
    while (event := await asyncio.wait_for(call.read(), timeout=10)) is not EOF:
        assert isinstance(event, pb.JobEvent)
        later.append(event)
    # Exactly the events stored after the snapshot, in order, none twice, no snapshot again.
    after = [e for e in await _trail(job_stub, job) if e.sequence > state.sequence]
    assert [(e.sequence, e.kind) for e in later] == [(e.sequence, e.kind) for e in after]
    assert [e.sequence for e in later] == list(range(state.sequence + 1, later[-1].sequence + 1))
    assert (later[-1].kind, later[-1].to_status) == ("job.status", "COMPLETED")
    assert later[-1].counters.tasks_succeeded == 2


async def test_a_resumed_watch_gets_the_state_first_then_only_the_events_after_it(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings)
    await job_stub.CancelJob(jobs_pb.CancelJobRequest(name=job), metadata=USER)
    trail = await _trail(job_stub, job)
    resume_from = trail[-3].sequence
    state, *replayed = await _whole_watch(job_stub, job, after_sequence=resume_from)
    # The current state, numbered as the client's own position: a client (or browser) that
    # resumes again from the snapshot's sequence misses nothing of the replay.
    assert (state.kind, state.sequence, state.job_status) == (
        SNAPSHOT,
        resume_from,
        pb.Job.CANCELLED,
    )
    assert [(e.sequence, e.kind) for e in replayed] == [(e.sequence, e.kind) for e in trail[-2:]]
    # Resuming from the last event gets the state alone, the stream ends (the job is final).
    (again,) = await _whole_watch(job_stub, job, after_sequence=trail[-1].sequence)
    assert (again.kind, again.sequence, again.job_status) == (
        SNAPSHOT,
        trail[-1].sequence,
        pb.Job.CANCELLED,
    )


async def test_a_resume_point_past_the_jobs_last_event_misses_nothing(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    # A forged or stale Last-Event-ID past the end: the stream was numbered from it and
    # skipped every event up to it, silently. No client can have seen those events.
    job = await ready_job(job_stub, worker_stub, settings, files=1)
    [task] = await started_tasks(
        job_stub, settings, job, [pb.JobField(name="number", data_type="text")], 1
    )
    before = await _trail(job_stub, job)
    request = jobs_pb.WatchJobRequest(name=job, after_sequence=before[-1].sequence + 1000)
    call = job_stub.WatchJob(request, metadata=USER)
    state = await asyncio.wait_for(call.read(), timeout=5)
    assert isinstance(state, pb.JobEvent)
    assert (state.kind, state.sequence) == (SNAPSHOT, before[-1].sequence)
    values = struct_pb2.Struct()
    values.update({"number": "42"})
    await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
    await worker_stub.ReportTaskResult(
        worker_pb.ReportTaskResultRequest(task=task, values=values), metadata=WORKER
    )
    later: list[pb.JobEvent] = []
    while (event := await asyncio.wait_for(call.read(), timeout=10)) is not EOF:
        assert isinstance(event, pb.JobEvent)
        later.append(event)
    after = [e for e in await _trail(job_stub, job) if e.sequence > before[-1].sequence]
    assert [e.sequence for e in later] == [e.sequence for e in after]
    assert (later[-1].kind, later[-1].to_status) == ("job.status", "COMPLETED")
