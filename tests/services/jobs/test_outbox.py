"""The transactional outbox under crashes: every message arrives once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import nats
import pytest
from nats.js import JetStreamContext
from sqlalchemy import select, update

from bytereview.core import streams
from bytereview.core.auth import Principal, PrincipalKind
from bytereview.core.settings import Settings
from bytereview.core.storage import make_storage
from services.jobs import RunningJobsService
from services.jobs.domain import DeclaredFile, Jobs, JobsContext, Users
from services.jobs.domain.work import task_message
from services.jobs.messaging import EventHub, OutboxRelay, enqueue_many, outbox
from services.jobs.store import db, models

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub


@pytest.fixture
async def parts(settings: Settings) -> AsyncIterator[tuple[JobsContext, JetStreamContext]]:
    engine = db.create_engine(settings.database_url)
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    for spec in (streams.ingest_queue(settings), streams.extract_queue(settings)):
        await streams.declare_queue(js, spec)
    ctx = JobsContext(
        sessions=db.session_factory(engine),
        storage=make_storage(settings),
        settings=settings,
        hub=EventHub(),
    )
    yield ctx, js
    await nc.drain()
    await engine.dispose()


async def _finalized_job_with_files(ctx: JobsContext, count: int) -> str:
    """A job whose finalize committed `count` outbox rows, with no relay running (a crash)."""
    user = await Users(ctx).resolve(Principal(PrincipalKind.USER, "u1"))
    jobs = Jobs(ctx)
    job, targets = await jobs.create(
        user_id=user.id,
        actor="t",
        display_name="",
        request_id="",
        files=[DeclaredFile(f"f{i}.pdf", 4) for i in range(count)],
        persist_data=True,
    )
    for target in targets:
        with ctx.storage.open_write(f"jobs/{job.id}/uploads/{target.file_id}") as handle:
            handle.write(b"%PDF")
    await jobs.finalize_uploads(user_id=user.id, actor="t", job_id=job.id)
    return job.id


async def _messages(js: JetStreamContext, settings: Settings) -> int:
    info = await js.stream_info(settings.ingest_stream)
    return int(info.state.messages)


async def test_crash_between_commit_and_publish(
    parts: tuple[JobsContext, JetStreamContext], settings: Settings
) -> None:
    ctx, js = parts
    await _finalized_job_with_files(ctx, 3)
    assert await _messages(js, settings) == 0  # committed, never published: the process "died"
    relay = OutboxRelay(sessions=ctx.sessions, js=js, wakeup=asyncio.Event())
    # The lag counts from the commit: a moment old, not zero (nothing waits) nor stale.
    assert 0 < await relay.oldest_unsent_age() < 60
    assert await relay.relay_once() == 3  # a new process picks the rows up
    assert await relay.relay_once() == 0
    assert await relay.oldest_unsent_age() == 0
    assert await _messages(js, settings) == 3


async def test_crash_between_publish_and_mark(
    parts: tuple[JobsContext, JetStreamContext], settings: Settings
) -> None:
    ctx, js = parts
    await _finalized_job_with_files(ctx, 2)
    relay = OutboxRelay(sessions=ctx.sessions, js=js, wakeup=asyncio.Event())
    assert await relay.relay_once() == 2
    # The relay published but its "sent" marks were lost: the rows look unsent again.
    async with ctx.sessions.begin() as session:
        await session.execute(update(models.OutboxMessage).values(sent_at=None))
    assert await relay.relay_once() == 2
    # JetStream dropped the repeats by Nats-Msg-Id: still one message per row.
    assert await _messages(js, settings) == 2
    async with ctx.sessions() as session:
        rows = (await session.scalars(select(models.OutboxMessage))).all()
    assert all(r.sent_at is not None and r.attempts == 2 for r in rows)


async def test_two_relays_side_by_side(
    parts: tuple[JobsContext, JetStreamContext], settings: Settings
) -> None:
    ctx, js = parts
    await _finalized_job_with_files(ctx, 40)
    relays = [
        OutboxRelay(sessions=ctx.sessions, js=js, wakeup=asyncio.Event(), batch_size=7)
        for _ in range(2)
    ]

    async def drain(relay: OutboxRelay) -> None:
        while await relay.relay_once():
            pass

    await asyncio.gather(*(drain(r) for r in relays))
    assert await _messages(js, settings) == 40


async def test_a_batch_marks_what_was_published_and_keeps_what_was_not(
    parts: tuple[JobsContext, JetStreamContext], settings: Settings
) -> None:
    """The relay publishes a batch side by side (#18): a row JetStream refused stays unsent
    for the next pass (at least once), the others are marked sent and not sent again."""
    ctx, js = parts
    await _finalized_job_with_files(ctx, 3)
    async with ctx.sessions.begin() as session:
        session.add(models.OutboxMessage(id="nowhere-1", subject="no.stream.here", payload=b"x"))
    relay = OutboxRelay(sessions=ctx.sessions, js=js, wakeup=asyncio.Event())
    with pytest.raises(RuntimeError, match="1 of 4 outbox message"):
        await relay.relay_once()
    assert await _messages(js, settings) == 3
    async with ctx.sessions() as session:
        rows = {r.id: r for r in (await session.scalars(select(models.OutboxMessage))).all()}
    assert rows["nowhere-1"].sent_at is None
    assert rows["nowhere-1"].attempts == 1
    assert all(r.sent_at is not None for k, r in rows.items() if k != "nowhere-1")
    # Next pass: only the unsent row is tried again.
    with pytest.raises(RuntimeError, match="1 of 1 outbox message"):
        await relay.relay_once()
    assert await _messages(js, settings) == 3


async def _enqueue_tasks(ctx: JobsContext, tenant: str, count: int) -> list[str]:
    """`count` extract task messages on `tenant`'s lane, committed in one transaction (as
    StartJob's task builder queues them); returns their message ids."""
    messages = [task_message(models.new_id(), models.new_id(), 0, tenant) for _ in range(count)]
    async with ctx.sessions.begin() as session:
        await enqueue_many(
            session, [(m["message_id"], m["subject"], m["payload"]) for m in messages]
        )
    return [m["message_id"] for m in messages]


async def _unsent(ctx: JobsContext) -> set[str]:
    async with ctx.sessions() as session:
        return set(
            (
                await session.scalars(
                    select(models.OutboxMessage.id).where(models.OutboxMessage.sent_at.is_(None))
                )
            ).all()
        )


async def test_a_small_tenant_is_not_queued_behind_a_big_tenants_backlog(
    parts: tuple[JobsContext, JetStreamContext], settings: Settings
) -> None:
    """The relay shares each batch out between lanes (#18): the small tenant's rows,
    committed after the big tenant's backlog, go out on the next pass, not after the
    backlog drained (oldest first across tenants took 6 passes of 10 to reach them).
    Within a lane it stays oldest first, every row is published once, and the relay does
    not wait for its poll between passes that left rows behind."""
    ctx, js = parts
    big_first = await _enqueue_tasks(ctx, "tenant-big", 30)
    big_then = await _enqueue_tasks(ctx, "tenant-big", 30)
    small = await _enqueue_tasks(ctx, "tenant-small", 3)
    relay = OutboxRelay(sessions=ctx.sessions, js=js, wakeup=asyncio.Event(), batch_size=10)
    assert await relay.relay_once() == 8  # 5 of each lane's share; the small lane has 3
    unsent = await _unsent(ctx)
    assert not unsent & set(small)
    assert len(unsent) == 55
    assert unsent >= set(big_then)  # the big lane's oldest went first
    # The rest drains without waiting for the 30 s poll between passes.
    relay = OutboxRelay(
        sessions=ctx.sessions, js=js, wakeup=asyncio.Event(), batch_size=10, poll_seconds=30
    )
    running = asyncio.create_task(relay.run())
    try:
        for _ in range(400):  # 20 s, under the poll
            if not await _unsent(ctx):
                break
            await asyncio.sleep(0.05)
    finally:
        relay.stop()
        await running
    assert not await _unsent(ctx)
    assert relay.published == 55
    info = await js.stream_info(settings.extract_stream, subjects_filter=">")
    assert info.state.subjects == {
        streams.extract_lane_subject("tenant-big"): len(big_first) + len(big_then),
        streams.extract_lane_subject("tenant-small"): len(small),
    }


async def test_lanes_beyond_one_pass_take_turns(
    parts: tuple[JobsContext, JetStreamContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    """More lanes than a pass serves: the next pass goes on after the last lane served and
    wraps round, so no lane waits for lanes that sort before it."""
    ctx, js = parts
    monkeypatch.setattr(outbox, "MAX_LANES", 2)
    lanes = {tenant: await _enqueue_tasks(ctx, tenant, 4) for tenant in ("t-a", "t-b", "t-c")}
    relay = OutboxRelay(sessions=ctx.sessions, js=js, wakeup=asyncio.Event(), batch_size=2)
    served = []
    for _ in range(3):
        before = await _unsent(ctx)
        assert await relay.relay_once() == 2
        gone = before - await _unsent(ctx)
        served.append({t for t, ids in lanes.items() if gone & set(ids)})
    assert served == [{"t-a", "t-b"}, {"t-c", "t-a"}, {"t-b", "t-c"}]


# Each "worker" dies holding the message: an ack wait of 1 s, not 5, for it to come back.
@pytest.mark.settings(max_deliver=2, ack_wait_seconds=1)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_dead_letters_are_recorded_on_the_file(
    job_stub: JobStub, settings: Settings, jobs: RunningJobsService
) -> None:
    """A message every worker dies on: after MaxDeliver, the file fails with a reason."""
    from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
    from bytereview.jobs.v1 import resources_pb2 as pb
    from tests.conftest import USER
    from tests.services.jobs.helpers import upload

    created = await job_stub.CreateJob(
        jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="huge.zip", size_bytes=4)]),
        metadata=USER,
    )
    upload(settings, created.upload_targets[0], b"PK\x03\x04")
    await job_stub.FinalizeUploads(
        jobs_pb.FinalizeUploadsRequest(name=created.job.name), metadata=USER
    )
    spec = streams.ingest_queue(settings)
    nc = await nats.connect(settings.nats_url)
    try:
        sub = await nc.jetstream().pull_subscribe_bind(spec.durable, stream=spec.stream)
        for _ in range(settings.max_deliver):  # each "worker" dies holding it: no ack, no nak
            await sub.fetch(1, timeout=30)
        # A worker still pulling is what makes JetStream notice the message is exhausted,
        # once the last ack wait ran out: pull until the job goes on (a fixed 8 s pull
        # before, then polling).
        for _ in range(40):
            with contextlib.suppress(TimeoutError):
                await sub.fetch(1, timeout=0.5)
            job = await job_stub.GetJob(jobs_pb.GetJobRequest(name=created.job.name), metadata=USER)
            if job.status == pb.Job.READY:
                break
    finally:
        await nc.close()  # not drain: that waits out the open pull request
    files = (
        await job_stub.ListFiles(jobs_pb.ListFilesRequest(parent=created.job.name), metadata=USER)
    ).files
    assert files[0].status == pb.SourceFile.FAILED
    assert "gave up after 2 attempts" in files[0].error
    assert job.status == pb.Job.READY  # the job goes on
    info = await jobs.relay._js.stream_info(spec.stream)
    assert info.state.messages == 0  # and the dead message is gone from the queue
