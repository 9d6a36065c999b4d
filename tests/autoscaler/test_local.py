"""Local mode (`bytereview up`): the pool's worker heartbeats reach the policy, on a real
nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NatsClient

from bytereview.core import streams
from bytereview_operator.local import LocalPool
from bytereview_operator.pool_policy import PoolPolicy
from tests.autoscaler.helpers import beat, extract_queue, until
from tests.servers import NatsServer

QUEUE = extract_queue()


@pytest.fixture
async def nc(nats: NatsServer) -> AsyncIterator[NatsClient]:
    client = await nats_connect(nats.url)
    await streams.declare_queue(client.jetstream(), QUEUE)
    yield client
    await client.drain()


async def nats_connect(url: str) -> NatsClient:
    return await nats.connect(url)


async def test_no_worker_is_started_while_the_pools_workers_wait_out_an_outage(
    nc: NatsClient,
) -> None:
    started: list[str] = []

    async def start(name: str) -> None:
        started.append(name)

    async def stop(name: str) -> None:
        raise AssertionError(f"{name} stopped")

    policy = PoolPolicy(
        min_replicas=1,
        max_replicas=4,
        per_replica_concurrency=2,
        expected_task_seconds=2,
        target_drain_seconds=10,
    )
    pool = LocalPool(name="extract", spec=QUEUE, policy=policy, start=start, stop=stop)
    js = nc.jetstream()
    sub = await pool.heartbeats.attach(nc, QUEUE.durable)
    for i in range(100):
        await js.publish(QUEUE.subject, f"task {i}".encode())
    pulled = await js.pull_subscribe_bind(QUEUE.durable, stream=QUEUE.stream)
    running = await pulled.fetch(2, timeout=5)  # the first worker's two slots, never acked

    await beat(nc, QUEUE.durable, "extract", 2, 2)
    await beat(nc, "ingest-workers", "ingest", 1, 0)  # another pool's: not listened to
    await until(lambda: pool.heartbeats.waiting(QUEUE.durable) == 2)
    observation = await pool.observe(js)
    assert observation is not None
    assert (observation.in_flight, observation.waiting) == (2, 2)
    await pool.step(observation)
    assert (pool.replicas, started) == (1, [])

    await beat(nc, QUEUE.durable, "extract", 2, 0)  # the dependency is back
    await until(lambda: pool.heartbeats.waiting(QUEUE.durable) == 0)
    await pool.step(await pool.observe(js))
    assert pool.replicas == 4
    assert started == ["extract-2", "extract-3", "extract-4"]
    assert pool.heartbeats.inflight == {"extract": 2}
    for msg in running:
        await msg.ack_sync()
    await pulled.unsubscribe()
    await sub.unsubscribe()
