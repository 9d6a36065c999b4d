"""Local mode: the operator's policy scaling worker processes under `bytereview up`.

The first worker of a pool (which also serves the component's gRPC API) always runs;
the policy adds `worker_only` processes beside it when a backlog appears and retires
them, idle ones first, once the scale-down window has passed. Retiring is SIGTERM:
the worker drains what it holds, as a pod does in Kubernetes. The launcher owns the
processes (`start(component, name)`, `stop(name)`); this module only decides how many.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from bytereview.core import streams
from bytereview.core.settings import Settings
from bytereview.core.streams import QueueSpec
from bytereview_operator.estimates import Observation
from bytereview_operator.heartbeats import WorkerHeartbeats
from bytereview_operator.pool_policy import PoolPolicy
from bytereview_operator.reconcile import ScaleState, observe_consumer

log = logging.getLogger(__name__)
LOCAL_TARGET_DRAIN_SECONDS = 10.0


@dataclass
class LocalPool:
    """One pool of local worker processes. `start(name)` and `stop(name)` own the processes."""

    name: str
    spec: QueueSpec
    policy: PoolPolicy
    start: Callable[[str], Awaitable[None]]
    stop: Callable[[str], Awaitable[None]]
    say: Callable[[str], None] = lambda line: None
    poll_seconds: float = 1.0
    # Names of the running extra workers, oldest first (the first worker is not listed).
    extras: list[str] = field(default_factory=list)
    heartbeats: WorkerHeartbeats = field(default_factory=WorkerHeartbeats)
    state: ScaleState = field(default_factory=ScaleState)
    _serial: int = 1

    @property
    def replicas(self) -> int:
        return 1 + len(self.extras)

    async def run(self, nc: NatsClient, stopping: asyncio.Event) -> None:
        sub = await self.heartbeats.attach(nc, self.spec.durable)
        js = nc.jetstream()
        try:
            while not stopping.is_set():
                try:
                    await self.step(await self.observe(js))
                except Exception as exc:  # a failed poll is retried at the next one
                    log.warning("local scaling of %s: %s", self.name, exc)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await stopping.wait()
        finally:
            await sub.unsubscribe()

    async def observe(self, js: JetStreamContext) -> Observation | None:
        """The queue's counts, and how many of its in-flight tasks the workers say are
        waiting on a dependency (its outage or its quota)."""
        spec = self.spec
        observation = await observe_consumer(js, spec.stream, spec.durable, time.monotonic())
        if observation is None:
            return None
        return dataclasses.replace(observation, waiting=self.heartbeats.waiting(spec.durable))

    async def step(self, observation: Observation | None) -> None:
        if observation is None:
            return  # the queue does not exist yet: nothing to scale
        decision = self.state.decide(self.policy, observation, self.replicas)
        if decision.replicas == self.replicas:
            return
        self.say(
            f"{self.name}: {self.replicas} -> {decision.replicas} workers ({decision.reason}; "
            f"pending {observation.pending}, in flight {observation.in_flight})"
        )
        while self.replicas < decision.replicas:
            self._serial += 1
            name = f"{self.name}-{self._serial}"
            self.extras.append(name)
            await self.start(name)
        while self.replicas > decision.replicas:
            # The least busy extra goes first; the oldest among equals.
            inflight = self.heartbeats.inflight
            victim = min(self.extras, key=lambda n: (inflight.get(n, 0), self.extras.index(n)))
            self.extras.remove(victim)
            self.heartbeats.forget(victim)
            await self.stop(victim)


async def scale_locally(
    settings: Settings,
    nats_url: str,
    *,
    start: Callable[[str, str], Awaitable[None]],
    stop: Callable[[str], Awaitable[None]],
    say: Callable[[str], None],
    stopping: asyncio.Event,
) -> None:
    """The operator's policy over both local pools until `stopping`; `start(component, name)`."""
    if settings.local_max_workers <= 1:
        return
    nc = await nats.connect(nats_url, name="bytereview-up-scaler")
    pools = []
    for component, spec, concurrency, task_seconds in (
        ("ingest", streams.ingest_queue(settings), settings.ingest_concurrency, 5.0),
        ("extract", streams.extract_queue(settings), settings.extract_concurrency, 2.0),
    ):

        async def start_one(name: str, component: str = component) -> None:
            await start(component, name)

        policy = PoolPolicy(
            min_replicas=1,
            max_replicas=settings.local_max_workers,
            per_replica_concurrency=max(1, concurrency),
            expected_task_seconds=task_seconds,
            # A local process starts in seconds, not a pod's tens of seconds: drain a burst
            # sooner than the chart's default does.
            target_drain_seconds=LOCAL_TARGET_DRAIN_SECONDS,
            scale_down_stabilization_seconds=settings.local_scale_down_seconds,
        )
        pool = LocalPool(
            name=component, spec=spec, policy=policy, start=start_one, stop=stop, say=say
        )
        pools.append(pool.run(nc, stopping))
    try:
        await asyncio.gather(*pools)
    finally:
        await nc.close()
