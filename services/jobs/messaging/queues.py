"""What the work queues look like right now, for the operator: JetStream's view of each
stream and its durable consumer, and the workers' own load heartbeats.

Workers publish `{"pod", "inflight", "waiting", "waiting_on"}` every 2 s on
`WORKER_LOAD_SUBJECT.<durable>.<pod>` (worker_runtime); the autoscalers listen to them too.
The jobs service keeps the last one per pod, so an operator sees which worker holds how many
messages, how many of them wait on a dependency and on what, and when it was last heard.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from bytereview.core import load_beats, streams
from bytereview.core.streams import WORKER_LOAD_SUBJECT, QueueSpec

log = logging.getLogger(__name__)

# A worker not heard from for this long is gone (it beats every 2 s).
WORKER_GONE_AFTER = dt.timedelta(seconds=load_beats.GONE_AFTER_SECONDS)


@dataclass(frozen=True, slots=True)
class WorkerSeen:
    pod: str
    inflight: int
    seen_at: dt.datetime
    waiting: int = 0
    waiting_on: tuple[str, ...] = ()


@dataclass(slots=True)
class WorkerLoads:
    """The last load heartbeat of every worker, by consumer (pool) and pod."""

    _seen: dict[str, dict[str, WorkerSeen]] = field(default_factory=dict)
    _sub: Subscription | None = None

    async def attach(self, nc: NatsClient) -> None:
        self._sub = await nc.subscribe(f"{WORKER_LOAD_SUBJECT}.>", cb=self._on_beat)

    async def detach(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_beat(self, msg: Msg) -> None:
        beat = load_beats.decode(msg.subject, msg.data)
        if beat is None:
            log.debug("ignored a malformed worker heartbeat on %s", msg.subject)
            return
        seen = WorkerSeen(
            beat.pod,
            beat.inflight,
            dt.datetime.now(dt.UTC),
            waiting=beat.waiting,
            waiting_on=beat.waiting_on,
        )
        self.record(beat.durable, seen)

    def record(self, durable: str, seen: WorkerSeen) -> None:
        self._seen.setdefault(durable, {})[seen.pod] = seen

    def workers(self, durable: str, *, now: dt.datetime | None = None) -> list[WorkerSeen]:
        """The pool's workers heard from recently, by pod name; forgets the others."""
        cutoff = (now or dt.datetime.now(dt.UTC)) - WORKER_GONE_AFTER
        pods = self._seen.get(durable, {})
        for pod in [p for p, s in pods.items() if s.seen_at < cutoff]:
            del pods[pod]
        return sorted(pods.values(), key=lambda s: s.pod)

    def waiting_on(self, durable: str) -> list[str]:
        """What the pool's waiting workers heard from recently wait on: each reason once, in
        the order of their pods."""
        reasons: dict[str, None] = {}
        for seen in self.workers(durable):
            if seen.waiting:
                reasons.update(dict.fromkeys(seen.waiting_on))
        return list(reasons)


@dataclass(frozen=True, slots=True)
class QueueStat:
    pool: str
    spec: QueueSpec
    pending: int = 0
    ack_pending: int = 0
    redelivered: int = 0
    waiting_pulls: int = 0
    messages: int = 0
    oldest_age: dt.timedelta | None = None
    consumers: int = 0
    workers: list[WorkerSeen] = field(default_factory=list)


async def queue_stat(
    js: JetStreamContext, pool: str, spec: QueueSpec, loads: WorkerLoads
) -> QueueStat:
    """One pool's queue. A stream or consumer not declared yet reads as empty."""
    workers = loads.workers(spec.durable)
    try:
        stream = await js.stream_info(spec.stream)
    except NotFoundError:
        return QueueStat(pool, spec, workers=workers)
    state = stream.state
    oldest_age = None
    if state.messages:
        # A work-queue stream drops a message once acked: its first one is the oldest unfinished.
        with contextlib.suppress(NotFoundError):  # acked in the meantime: no age, not an error
            first = await js.get_msg(spec.stream, state.first_seq)
            if first.time is not None:
                oldest_age = max(dt.timedelta(0), dt.datetime.now(dt.UTC) - first.time)
    if spec.fair:
        # One consumer per lane (and lanes nobody pulled from yet have none): count them all.
        counts = await streams.queue_counts(js, spec.stream)
        if counts is not None:
            return QueueStat(
                pool,
                spec,
                pending=counts.pending,
                ack_pending=counts.in_flight,
                redelivered=counts.redelivered,
                waiting_pulls=counts.waiting_pulls,
                messages=state.messages,
                oldest_age=oldest_age,
                consumers=state.consumer_count,
                workers=workers,
            )
    try:
        consumer = await js.consumer_info(spec.stream, spec.durable)
    except NotFoundError:
        return QueueStat(
            pool,
            spec,
            messages=state.messages,
            oldest_age=oldest_age,
            consumers=state.consumer_count,
            workers=workers,
        )
    return QueueStat(
        pool,
        spec,
        pending=int(consumer.num_pending or 0),
        ack_pending=int(consumer.num_ack_pending or 0),
        redelivered=int(consumer.num_redelivered or 0),
        waiting_pulls=int(consumer.num_waiting or 0),
        messages=state.messages,
        oldest_age=oldest_age,
        consumers=state.consumer_count,
        workers=workers,
    )
