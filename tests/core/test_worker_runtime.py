"""The worker runtime against a real nats-server: outages, hung handlers, the wedge (#17).

The wedge seen under `up`: a handler awaiting a call that never returned (worker calls to
the jobs service had no deadline) kept its message alive with in-progress acks for ever;
with every slot held that way the fetch loop stopped pulling, so JetStream redelivered
nothing (0 waiting pulls) and the job sat unfinished, unnoticed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from bytereview.core import streams, worker_runtime
from bytereview.core.clients import channel
from bytereview.core.workers import JobsCalls, watch
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.extract.model.ratecontrol import RateController
from tests.servers import NatsServer

SPEC = streams.QueueSpec(
    stream="TEST_WORK",
    subject="bytereview.test.work",
    durable="test-workers",
    ack_wait_seconds=2,
    max_deliver=3,
    backoff_seconds=(0.2,),
    max_ack_pending=100,
)


@pytest.fixture
async def nc(nats: NatsServer) -> AsyncIterator[NatsClient]:
    client = NatsClient()
    await client.connect(nats.url)
    await streams.declare_queue(client.jetstream(), SPEC)
    yield client
    await client.close()


def make_worker(
    nc: NatsClient,
    handler: worker_runtime.Handler,
    *,
    concurrency: int = 1,
    max_run_seconds: float = 1800,
    spec: streams.QueueSpec = SPEC,
) -> worker_runtime.Worker:
    return worker_runtime.Worker(
        js=nc.jetstream(),
        spec=spec,
        handler=handler,
        concurrency=concurrency,
        grace_seconds=1,
        max_run_seconds=max_run_seconds,
    )


@asynccontextmanager
async def working(worker: worker_runtime.Worker) -> AsyncIterator[asyncio.Task[None]]:
    run = asyncio.create_task(worker.run())
    try:
        yield run
    finally:
        worker.stop()
        await asyncio.wait_for(run, timeout=30)


async def publish(nc: NatsClient, *bodies: bytes, spec: streams.QueueSpec = SPEC) -> None:
    for body in bodies:
        await nc.jetstream().publish(spec.subject, body, stream=spec.stream)


async def eventually(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_hung_handler_is_released_and_the_queue_moves_on(nc: NatsClient) -> None:
    """The wedge's regression test: one slot, a first call that never returns."""
    done: list[tuple[bytes, int]] = []
    forever = asyncio.Event()

    async def handler(delivery: worker_runtime.Delivery) -> None:
        if delivery.data == b"a" and delivery.attempt == 1:
            await forever.wait()  # a call without a deadline to a peer that never answers
        done.append((delivery.data, delivery.attempt))

    await publish(nc, b"a", b"b")
    worker = make_worker(nc, handler, max_run_seconds=1.5)
    async with working(worker):
        # Without a maximum run time in-progress acks kept "a" (and the only slot) for ever.
        await eventually(lambda: len(done) == 2)
    assert sorted(done) == [(b"a", 2), (b"b", 1)]


async def test_an_outage_is_waited_out_in_place_without_using_an_attempt(
    nc: NatsClient,
) -> None:
    calls: list[int] = []

    async def handler(delivery: worker_runtime.Delivery) -> None:
        calls.append(delivery.attempt)
        if len(calls) <= 4:
            raise worker_runtime.DependencyDown("the jobs service is restarting")

    one_attempt = dataclasses.replace(
        SPEC, stream="TEST_ONE", subject="bytereview.test.one", max_deliver=1
    )
    await streams.declare_queue(nc.jetstream(), one_attempt)
    await publish(nc, b"x", spec=one_attempt)
    # Four waits take ~2-4 s with backoff: longer than the maximum run time, which they
    # must not use up either.
    worker = make_worker(nc, handler, max_run_seconds=1.0, spec=one_attempt)
    async with working(worker):
        await eventually(lambda: worker.processed == 1)
    assert calls == [1, 1, 1, 1, 1]  # the same delivery every time
    # Acked: the server counts the ack a moment after the handler returned (CI run 45 read
    # it as still pending under load).
    for _ in range(100):
        lag = await streams.consumer_lag(nc.jetstream(), one_attempt)
        if lag == (0, 0):
            break
        await asyncio.sleep(0.05)
    assert lag == (0, 0)


@pytest.mark.parametrize("excused", [False, True], ids=["counted", "excused"])
async def test_calls_failing_with_an_outage_use_the_run_time_unless_excused(
    nc: NatsClient, excused: bool
) -> None:
    """A call that fails as an outage does after 0.4 s each time (a deadline met, for this
    message alone): its calls count against the 1.5 s maximum run time, so the message is
    released to its next attempt rather than retried in place for ever; a caller whose
    failures were checked to be the dependency's (the model, by its health probe) excuses
    them, and the handler runs past its run time for as long as the outage lasts."""
    calls: list[int] = []

    async def call() -> None:
        await asyncio.sleep(0.4)
        raise worker_runtime.DependencyDown("deadline exceeded")

    async def handler(delivery: worker_runtime.Delivery) -> None:
        calls.append(delivery.attempt)
        await worker_runtime.outlast(
            call,
            is_down=lambda exc: isinstance(exc, worker_runtime.DependencyDown),
            what="the peer",
            backoff=worker_runtime.Backoff(first=0.01, cap=0.02),
            excuse_failed_calls=excused,
        )

    await publish(nc, b"x")
    worker = make_worker(nc, handler, max_run_seconds=1.5)
    async with working(worker):
        if excused:
            await asyncio.sleep(3)  # twice the run time, in calls that failed
            assert calls == [1]
            assert worker.processed == 0
        else:
            await eventually(lambda: len(calls) >= 2)
            assert calls[:2] == [1, 2]  # cut at the run time, delivered again


async def test_the_heartbeat_counts_the_handlers_waiting_out_an_outage(nc: NatsClient) -> None:
    """Handlers waiting a dependency out (DependencyDown, or calls in `outlast`: two gathered
    in one handler count once) are reported as waiting, a handler merely busy is not, and
    the count is 0 once the outage ended: the autoscaler adds no pods that would wait too."""
    down = True
    busy = asyncio.Event()
    beats: list[dict[str, object]] = []

    async def on_beat(msg: Msg) -> None:
        beats.append(json.loads(msg.data))

    async def model_call() -> None:
        if down:
            raise ConnectionError("the model's service is unreachable")

    async def outlasting() -> None:
        await worker_runtime.outlast(
            model_call,
            is_down=lambda exc: isinstance(exc, ConnectionError),
            what="the model's service",
            backoff=worker_runtime.Backoff(first=0.2, cap=1.0),
        )

    async def handler(delivery: worker_runtime.Delivery) -> None:
        if delivery.data == b"storage" and down:
            raise worker_runtime.DependencyDown("storage is unreachable")
        if delivery.data == b"model":
            await asyncio.gather(outlasting(), outlasting())
        if delivery.data == b"busy":
            await busy.wait()

    await nc.subscribe(f"{streams.WORKER_LOAD_SUBJECT}.{SPEC.durable}.pod-a", cb=on_beat)
    await publish(nc, b"storage", b"model", b"busy")
    worker = worker_runtime.Worker(
        js=nc.jetstream(),
        spec=SPEC,
        handler=handler,
        concurrency=3,
        grace_seconds=1,
        nc=nc,
        pod="pod-a",
    )
    async with working(worker):
        await eventually(
            lambda: bool(beats) and (beats[-1].get("inflight"), beats[-1].get("waiting")) == (3, 2),
            timeout=20,
        )
        assert beats[-1] == {
            "pod": "pod-a",
            "inflight": 3,
            "waiting": 2,
            # What they wait on, each said once (the model's two calls are one handler).
            "waiting_on": ["a dependency", "the model's service"],
        }
        down = False
        busy.set()
        await eventually(lambda: worker.processed == 3, timeout=60)
        await eventually(lambda: beats[-1].get("inflight") == 0, timeout=20)
        assert beats[-1] == {"pod": "pod-a", "inflight": 0, "waiting": 0, "waiting_on": []}
    assert worker.waiting == 0


async def test_a_handler_says_what_it_waits_on_as_it_learns_more(nc: NatsClient) -> None:
    """An episode's reason is its latest failure's (the service overloaded, then refusing the
    key); a wait inside it (its quota) says its own until it ends."""
    failures = ["overloaded", "credentials rejected"]
    called = asyncio.Event()
    go_on = asyncio.Event()  # each call answers when the test says
    in_quota = asyncio.Event()
    out_of_quota = asyncio.Event()

    async def model_call() -> None:
        called.set()
        await go_on.wait()
        go_on.clear()
        if failures:
            raise ConnectionError(failures.pop(0))
        with worker_runtime.waiting_on_dependency("the model's rate limits"):
            in_quota.set()
            await out_of_quota.wait()

    async def handler(delivery: worker_runtime.Delivery) -> None:
        await worker_runtime.outlast(
            model_call,
            is_down=lambda exc: isinstance(exc, ConnectionError),
            what="the model",
            why=str,
            backoff=worker_runtime.Backoff(first=0.05, cap=0.05),
        )

    await publish(nc, b"x")
    worker = make_worker(nc, handler)
    async with working(worker):
        await asyncio.wait_for(called.wait(), timeout=20)
        assert worker.waiting_on == []  # calling, not waiting yet
        go_on.set()
        await eventually(lambda: worker.waiting_on == ["the model: overloaded"])
        go_on.set()
        await eventually(lambda: worker.waiting_on == ["the model: credentials rejected"])
        go_on.set()
        await asyncio.wait_for(in_quota.wait(), timeout=20)
        assert worker.waiting_on == ["the model's rate limits"]
        out_of_quota.set()
        await eventually(lambda: worker.processed == 1)
        assert (worker.waiting, worker.waiting_on) == (0, [])


async def test_a_call_tried_again_in_an_outage_counts_as_waiting(nc: NatsClient) -> None:
    """An outage is its calls tried again as well as its sleeps: a dependency that answers
    by timing out holds each call as long as a backoff. From the first failure until the
    call goes through, the handler waits (counting only the sleeps read it as working)."""
    calls = 0
    in_second_call = asyncio.Event()
    answer = asyncio.Event()

    async def slow_dependency() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("timed out")
        in_second_call.set()
        await answer.wait()  # the call tried again, taking its time

    async def handler(delivery: worker_runtime.Delivery) -> None:
        await worker_runtime.outlast(
            slow_dependency,
            is_down=lambda exc: isinstance(exc, ConnectionError),
            what="a slow dependency",
            backoff=worker_runtime.Backoff(first=0.05, cap=0.1),
        )

    await publish(nc, b"one")
    worker = worker_runtime.Worker(
        js=nc.jetstream(), spec=SPEC, handler=handler, concurrency=1, grace_seconds=1
    )
    async with working(worker):
        await asyncio.wait_for(in_second_call.wait(), timeout=20)
        assert (worker.inflight, worker.waiting) == (1, 1)
        answer.set()
        await eventually(lambda: worker.processed == 1, timeout=20)
        assert worker.waiting == 0


async def test_a_task_waiting_for_the_models_quota_counts_as_waiting(nc: NatsClient) -> None:
    """The model's quota is a dependency's limit as an outage is: a task waiting in the rate
    controller for a turn is reported waiting (more pods would wait too), one calling the
    model is not."""
    rate = RateController(max_concurrency=1)
    calling = asyncio.Event()
    answer = asyncio.Event()

    async def model_call() -> None:
        calling.set()
        await answer.wait()

    async def handler(delivery: worker_runtime.Delivery) -> None:
        await rate.call(model_call)

    await publish(nc, b"first", b"second")
    worker = worker_runtime.Worker(
        js=nc.jetstream(), spec=SPEC, handler=handler, concurrency=2, grace_seconds=1
    )
    async with working(worker):
        await asyncio.wait_for(calling.wait(), timeout=20)
        await eventually(lambda: worker.inflight == 2)
        await eventually(lambda: worker.waiting == 1)  # the second, for the one turn
        assert worker.waiting_on == ["the model's rate limits"]
        answer.set()
        await eventually(lambda: worker.processed == 2, timeout=20)
        assert worker.waiting == 0
        assert worker.waiting_on == []


async def test_the_task_own_failures_still_use_attempts(nc: NatsClient) -> None:
    attempts: list[int] = []

    async def handler(delivery: worker_runtime.Delivery) -> None:
        attempts.append(delivery.attempt)
        if delivery.attempt < 3:
            raise RuntimeError("the document is odd")

    await publish(nc, b"y")
    worker = make_worker(nc, handler)
    async with working(worker):
        await eventually(lambda: worker.processed == 1)
    assert attempts == [1, 2, 3]


@pytest.mark.parametrize(
    ("waiting", "fair"),
    [(True, False), (False, False), (True, True)],
    ids=["waiting", "running", "waiting-fair-lane"],
)
async def test_a_drain_uses_no_attempt_of_a_handler_waiting_on_a_dependency(
    nc: NatsClient, waiting: bool, fair: bool
) -> None:
    """A worker stopped (a rollout, a scale-down) while its handler waits out an outage: the
    delivery did not run the task, so its message is put back as a copy that says so, and
    the next worker's delivery is the task's next attempt in number, not in count. With one
    attempt allowed, a nak (what a handler running its task still gets) had used it up."""
    one_attempt = dataclasses.replace(
        SPEC, stream="TEST_DRAIN", subject="bytereview.test.drain", max_deliver=1, fair=fair
    )
    await streams.declare_queue(nc.jetstream(), one_attempt)
    # A fair queue's message is on its tenant's lane, and its copy goes back there.
    subject = one_attempt.lane_subject("tenant-a")
    await nc.jetstream().publish(subject, b"z", stream=one_attempt.stream)
    began = asyncio.Event()

    async def down() -> None:
        raise worker_runtime.DependencyDown("the model's service is not answering")

    async def first(delivery: worker_runtime.Delivery) -> None:
        began.set()
        if waiting:
            await worker_runtime.outlast(
                down,
                is_down=lambda exc: isinstance(exc, worker_runtime.DependencyDown),
                what="the model",
            )
        else:
            await asyncio.sleep(3600)  # the task's own work

    worker = make_worker(nc, first, spec=one_attempt)
    async with working(worker):
        await asyncio.wait_for(began.wait(), timeout=15)
        await asyncio.sleep(0.3)
    seen: list[worker_runtime.Delivery] = []

    async def second(delivery: worker_runtime.Delivery) -> None:
        seen.append(delivery)

    worker = make_worker(nc, second, spec=one_attempt)
    async with working(worker):
        if waiting:
            await eventually(lambda: worker.processed == 1)
        else:
            await asyncio.sleep(3)  # AckWait and more: nothing comes
    if waiting:
        [delivery] = seen
        assert (delivery.attempt, delivery.released, delivery.data) == (2, 1, b"z")
        assert delivery.subject == subject
        assert delivery.is_last_attempt  # the one attempt it has, still to use
        # Acked (the server counts the ack a moment after the handler returned).
        lag = await streams.consumer_lag(nc.jetstream(), one_attempt)
        for _ in range(100):
            if lag == (0, 0):
                break
            await asyncio.sleep(0.05)
            lag = await streams.consumer_lag(nc.jetstream(), one_attempt)
        assert lag == (0, 0)
    else:
        assert seen == []  # its one attempt was used


@contextmanager
def unresponsive_peer() -> Iterator[str]:
    """A TCP port that accepts connections and never says a word (a hung jobs service)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


async def test_every_call_to_the_jobs_service_has_a_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=worker_runtime.__name__)
    with unresponsive_peer() as address:
        async with channel(address) as ch:
            calls = JobsCalls(worker_grpc.JobWorkerServiceStub(ch), (), timeout=0.3)
            call = asyncio.create_task(
                calls(calls.stub.BeginTask, worker_pb.BeginTaskRequest(task="jobs/j/tasks/t"))
            )
            await asyncio.sleep(2.5)
            assert not call.done()  # still waiting the outage out...
            call.cancel()
    # ...by trying again: each try ended at its deadline.
    waits = [r for r in caplog.records if "the jobs service is unavailable" in r.getMessage()]
    assert len(waits) >= 2
    assert all("DEADLINE_EXCEEDED" in r.getMessage() for r in waits)


async def test_the_watchdog_notices_a_loop_that_stopped_pulling(nc: NatsClient) -> None:
    async def handler(delivery: worker_runtime.Delivery) -> None:
        return None

    worker = make_worker(nc, handler)
    await publish(nc, b"z")
    # A fetch loop that is not running at all, with a message waiting.
    idle = asyncio.create_task(asyncio.sleep(3600))
    try:
        why = await asyncio.wait_for(
            watch(worker, idle, nc.jetstream(), SPEC, stall_seconds=0.5, every=0.1), timeout=10
        )
    finally:
        idle.cancel()
    assert "1 message(s) wait" in why


async def test_the_watchdog_notices_a_loop_that_ended(nc: NatsClient) -> None:
    async def handler(delivery: worker_runtime.Delivery) -> None:
        return None

    async def broken() -> None:
        raise RuntimeError("fetch loop crashed")

    ended = asyncio.create_task(broken())
    worker = make_worker(nc, handler)
    why = await asyncio.wait_for(
        watch(worker, ended, nc.jetstream(), SPEC, stall_seconds=60, every=0.1), timeout=10
    )
    assert "fetch loop crashed" in why


async def test_a_busy_worker_is_not_a_stalled_one(nc: NatsClient) -> None:
    release = asyncio.Event()

    async def handler(delivery: worker_runtime.Delivery) -> None:
        await release.wait()

    await publish(nc, b"1", b"2")
    worker = make_worker(nc, handler, concurrency=1)
    async with working(worker) as run:
        await eventually(lambda: worker.inflight == 1)
        await asyncio.sleep(1)
        assert worker.pull_stalled_for() == 0.0  # every slot busy: not pulling is right
        watching = asyncio.create_task(
            watch(worker, run, nc.jetstream(), SPEC, stall_seconds=0.5, every=0.1)
        )
        await asyncio.sleep(1.5)
        assert not watching.done()
        watching.cancel()
        release.set()
        await eventually(lambda: worker.processed == 2)


async def test_declaring_a_queue_again_updates_its_ack_wait(nc: NatsClient) -> None:
    js = nc.jetstream()
    assert (await js.consumer_info(SPEC.stream, SPEC.durable)).config.ack_wait == 2
    await streams.declare_queue(js, dataclasses.replace(SPEC, ack_wait_seconds=15))
    assert (await js.consumer_info(SPEC.stream, SPEC.durable)).config.ack_wait == 15


@contextmanager
def restarted(server: NatsServer) -> Iterator[None]:
    """nats-server stopped, then started again on the same port and store (a NATS restart)."""
    server.process.terminate()
    server.process.wait(timeout=10)
    try:
        yield
    finally:
        server.start_again()


async def test_the_fetch_loop_outlives_a_nats_restart(nats: NatsServer, nc: NatsClient) -> None:
    done: list[bytes] = []
    release = asyncio.Event()

    async def handler(delivery: worker_runtime.Delivery) -> None:
        if delivery.data == b"before":
            await release.wait()  # in work across the restart
        done.append(delivery.data)

    # AckWait longer than the restart: the message in work is not redelivered meanwhile.
    spec = dataclasses.replace(
        SPEC, stream="TEST_NATS", subject="bytereview.test.nats", ack_wait_seconds=10
    )
    await streams.declare_queue(nc.jetstream(), spec)
    await publish(nc, b"before", spec=spec)
    worker = make_worker(nc, handler, concurrency=2, spec=spec)
    async with working(worker) as run:
        await eventually(lambda: worker.inflight == 1)
        with restarted(nats):
            await asyncio.sleep(2)
        await eventually(lambda: nc.is_connected)
        release.set()
        await publish(nc, b"after", spec=spec)
        await eventually(lambda: sorted(done) == [b"after", b"before"], timeout=30)
        assert not run.done()
    pending, ack_pending = await streams.consumer_lag(nc.jetstream(), spec)
    assert (pending, ack_pending) == (0, 0)
