"""What the autoscaler tests share: the extract queue they scale, a worker's load heartbeat as
a waiting worker publishes it, and a wait for a condition."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from nats.aio.client import Client as NatsClient

from bytereview.core import streams


def extract_queue() -> streams.QueueSpec:
    return streams.QueueSpec(
        stream="BR_EXTRACT",
        subject="br.extract",
        durable="extract-workers",
        ack_wait_seconds=30,
        max_deliver=5,
        backoff_seconds=(),
        max_ack_pending=64,
    )


async def beat(nc: NatsClient, durable: str, pod: str, inflight: int, waiting: int) -> None:
    """A worker's heartbeat, written out as the wire format says (not by our encoder)."""
    load = {"pod": pod, "inflight": inflight, "waiting": waiting}
    await nc.publish(f"{streams.WORKER_LOAD_SUBJECT}.{durable}.{pod}", json.dumps(load).encode())


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)
