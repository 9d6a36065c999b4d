"""Fair shares on a real nats-server (#18): a fair queue has a lane per tenant, and workers
share their free slots across lanes, so a big job does not starve another tenant's small
one; delivery guarantees (redelivery, MaxDeliver, dead-letter advisories) hold per lane,
and the queue's counts cover every lane."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from bytereview.core import streams, worker_runtime
from bytereview.core.fair_pull import FairPuller, share
from tests.servers import NatsServer

FAIR = streams.QueueSpec(
    stream="TEST_FAIR",
    subject="bytereview.test.fair",
    durable="fair-workers",
    ack_wait_seconds=2,
    max_deliver=2,
    backoff_seconds=(0.2,),
    max_ack_pending=1000,
    fair=True,
)


@pytest.fixture
async def nc(nats: NatsServer) -> AsyncIterator[NatsClient]:
    client = NatsClient()
    await client.connect(nats.url)
    await streams.declare_queue(client.jetstream(), FAIR)
    yield client
    await client.close()


async def publish(nc: NatsClient, tenant: str, *bodies: str) -> None:
    for body in bodies:
        await nc.jetstream().publish(FAIR.lane_subject(tenant), body.encode(), stream=FAIR.stream)


def test_share_gives_free_slots_to_the_least_served_lane_first() -> None:
    room = {"big": 1000, "small": 5}
    # This worker holds 8 of big's: every free slot goes to small, up to what it has.
    assert share(3, ["big", "small"], {"big": 8}, room) == {"small": 3}
    assert share(8, ["big", "small"], {"big": 8}, room) == {"small": 5, "big": 3}
    # Equal lanes split evenly; the odd slot rotates with `first`.
    assert share(4, ["a", "b"], {}, {"a": 9, "b": 9}) == {"a": 2, "b": 2}
    assert share(1, ["a", "b"], {}, {"a": 9, "b": 9}, first=0) == {"a": 1}
    assert share(1, ["a", "b"], {}, {"a": 9, "b": 9}, first=1) == {"b": 1}
    assert share(3, [], {}, {}) == {}


def test_tenant_tokens_are_safe_subject_tokens() -> None:
    assert FAIR.lane_subject("0123abcd") == "bytereview.test.fair.0123abcd"
    odd = FAIR.lane_subject("a.b *>")
    assert odd.count(".") == 3
    assert not set("*> ") & set(odd)
    assert FAIR.lane_durable(odd) == "fair-workers-" + odd.rsplit(".", 1)[1]
    assert FAIR.lane_durable(FAIR.subject) == FAIR.durable


async def test_a_small_job_is_not_starved_by_a_big_one(nc: NatsClient) -> None:
    """200 tasks of one tenant queued first, then 5 of another: with first-in first-out
    the 5 would run last; with lanes they take the next free slots."""
    await publish(nc, "big", *(f"big {i}" for i in range(200)))
    await publish(nc, "small", *(f"small {i}" for i in range(5)))
    order: list[str] = []
    all_done = asyncio.Event()

    async def handler(delivery: worker_runtime.Delivery) -> None:
        order.append(delivery.data.decode())
        await asyncio.sleep(0.02)
        if len(order) == 205:
            all_done.set()

    worker = worker_runtime.Worker(
        js=nc.jetstream(), spec=FAIR, handler=handler, concurrency=4, grace_seconds=1, nc=nc
    )
    run = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(30):
            await all_done.wait()
    finally:
        worker.stop()
        await asyncio.wait_for(run, 30)
    assert sorted(order) == sorted(
        [f"big {i}" for i in range(200)] + [f"small {i}" for i in range(5)]
    )
    small_at = [i for i, body in enumerate(order) if body.startswith("small")]
    # At most the first fetch (4 slots) goes wholly to big before the small lane is seen;
    # then the small lane gets every slot it can use.
    assert max(small_at) < 12, small_at
    # Within a lane the order is the stream's.
    assert [b for b in order if b.startswith("big")][:5] == [f"big {i}" for i in range(5)]


async def test_a_busy_worker_gives_its_next_free_slot_to_a_lane_published_meanwhile(
    nc: NatsClient,
) -> None:
    """Work on a new lane, published while every slot holds another lane's work, goes to the
    next free slot at once, not only after the lanes are read again (every look_seconds; an
    hour here). Before, the slots freeing in between went to the lanes known."""
    await publish(nc, "big", *(f"big {i}" for i in range(10)))
    puller = FairPuller(nc=nc, js=nc.jetstream(), spec=FAIR, look_seconds=3600)
    try:
        held = await puller.fetch(4, (), wait=2)
        assert [m.data for m in held] == [f"big {i}".encode() for i in range(4)]
        await publish(nc, "small", "small 0")
        # The server sends the publish to listeners before it acks it to the publisher; the
        # listener's callback runs on this loop's next turns.
        await asyncio.sleep(0.2)
        taken = await puller.fetch(1, [m.subject for m in held], wait=2)
        assert [m.data for m in taken] == [b"small 0"]
        for msg in [*held, *taken]:
            await msg.ack()
    finally:
        await puller.close()


async def test_slots_a_drained_lane_cannot_use_go_to_the_others_at_once(nc: NatsClient) -> None:
    """A lane counted at the last look but emptied since by another worker gives its slots
    back in the same round: the worker takes other lanes' work at once instead of idling
    until something is published (30 s here; nothing is)."""
    await publish(nc, "big", *(f"big {i}" for i in range(3)))
    await publish(nc, "small", "small 0")
    one = FairPuller(nc=nc, js=nc.jetstream(), spec=FAIR, look_seconds=3600)
    other = FairPuller(nc=nc, js=nc.jetstream(), spec=FAIR, look_seconds=3600)
    try:
        first = await one.fetch(1, (), wait=2)  # `one` has seen both lanes now
        big = FAIR.lane_subject("big")
        assert [m.subject for m in first] == [big]
        taken = await other.fetch(1, [big], wait=2)
        assert [m.data for m in taken] == [b"small 0"]
        async with asyncio.timeout(10):
            # `one` would give its slot to the small lane (it holds none of it): it is empty.
            got = await one.fetch(1, [big], wait=30)
        assert [m.data for m in got] == [b"big 1"]
        for msg in [*first, *taken, *got]:
            await msg.ack()
    finally:
        await one.close()
        await other.close()


async def test_work_published_just_after_an_empty_round_wakes_the_wait(nc: NatsClient) -> None:
    """A publish landing between a pull round that found nothing and the wait for work is
    taken at once: the puller listens before its next round, not after it (listening only
    after would miss it and sleep the whole wait, 30 s here)."""
    puller = FairPuller(nc=nc, js=nc.jetstream(), spec=FAIR)
    real_round = puller.pull_round
    rounds = 0

    async def round_then_publish(batch: int, held: Mapping[str, int]) -> list[Msg]:
        nonlocal rounds
        got = await real_round(batch, held)
        rounds += 1
        if rounds == 1:
            await publish(nc, "late", "just after")
        return got

    puller.pull_round = round_then_publish  # type: ignore[method-assign]
    async with asyncio.timeout(10):
        msgs = await puller.fetch(1, (), wait=30)
    assert [m.data for m in msgs] == [b"just after"]
    await msgs[0].ack()


async def test_lanes_keep_redelivery_max_deliver_and_dead_letter_advisories(
    nc: NatsClient,
) -> None:
    advisories: list[dict[str, object]] = []
    advised = asyncio.Event()

    async def on_advisory(msg: Msg) -> None:
        advisories.append(json.loads(msg.data))
        advised.set()

    await nc.subscribe(
        f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{FAIR.stream}.*", cb=on_advisory
    )
    await publish(nc, "t1", "fails")
    await publish(nc, "t2", "works")
    attempts: list[tuple[str, int]] = []

    async def handler(delivery: worker_runtime.Delivery) -> None:
        attempts.append((delivery.data.decode(), delivery.attempt))
        if delivery.data == b"fails":
            raise RuntimeError("the task's own failure")

    worker = worker_runtime.Worker(
        js=nc.jetstream(), spec=FAIR, handler=handler, concurrency=2, grace_seconds=1, nc=nc
    )
    run = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(20):
            await advised.wait()
    finally:
        worker.stop()
        await asyncio.wait_for(run, 30)
    assert sorted(attempts) == [("fails", 1), ("fails", 2), ("works", 1)]
    [advisory] = advisories
    assert advisory["consumer"] == FAIR.lane_durable(FAIR.lane_subject("t1"))
    counts = await streams.queue_counts(nc.jetstream(), FAIR.stream)
    # The dead one stays in the stream (the jobs service removes it when it records it).
    assert counts is not None
    assert (counts.arrived, counts.messages, counts.completed) == (2, 1, 1)


async def test_counts_cover_every_lane_and_lanes_without_a_consumer(nc: NatsClient) -> None:
    js = nc.jetstream()
    await publish(nc, "a", "a1", "a2", "a3")
    await publish(nc, "b", "b1", "b2")
    await js.publish(FAIR.subject, b"published before lanes existed", stream=FAIR.stream)
    puller = FairPuller(nc=nc, js=js, spec=FAIR)
    taken = await puller.fetch(3, (), wait=2)
    # One from each lane (the base subject is a lane too), the least served first.
    assert sorted(m.data.decode()[:1] for m in taken) == ["a", "b", "p"]
    await taken[0].ack_sync()
    counts = await streams.queue_counts(js, FAIR.stream)
    assert counts is not None
    assert (counts.arrived, counts.completed, counts.in_flight, counts.pending) == (6, 1, 2, 3)
    assert await streams.consumer_lag(js, FAIR) == (3, 2)
    for msg in taken[1:]:
        await msg.ack_sync()
