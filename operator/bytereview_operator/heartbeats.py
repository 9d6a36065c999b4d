"""The workers' load heartbeats, as the autoscalers read them.

Workers publish `{"pod", "inflight", "waiting"}` every 2 s on
`WORKER_LOAD_SUBJECT.<durable>.<pod>` (bytereview.core.worker_runtime). The in-flight count
per pod makes idle pods the cheap ones to delete; the waiting count (in-flight tasks waiting
out a dependency's outage), summed over a pool's pods, tells the policy that a growing queue
is an outage, not load.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from bytereview.core import load_beats
from bytereview.core.streams import WORKER_LOAD_SUBJECT

log = logging.getLogger(__name__)

# A pod not heard from for this long is gone: its last word must not hold a pool's scale-ups
# after it died mid-outage.
HEARTBEAT_GONE_SECONDS = load_beats.GONE_AFTER_SECONDS


@dataclass(frozen=True, slots=True)
class _Waiting:
    count: int
    seen: float


@dataclass
class WorkerHeartbeats:
    """The latest heartbeat of every worker pod, by pool (its consumer) and pod."""

    # Latest in-flight count per pod (pod names are unique across pools).
    inflight: dict[str, int] = field(default_factory=dict)
    # Real time, not a policy's clock: a heartbeat's age is measured against its arrival.
    clock: Callable[[], float] = time.monotonic
    _waiting: dict[str, dict[str, _Waiting]] = field(default_factory=dict)

    async def attach(self, nc: NatsClient, durable: str = "*") -> Subscription:
        """Listen to the heartbeats of one pool's workers (`durable`), or of every pool."""
        tokens = ">" if durable == "*" else f"{durable}.*"
        return await nc.subscribe(f"{WORKER_LOAD_SUBJECT}.{tokens}", cb=self._on_beat)

    async def _on_beat(self, msg: Msg) -> None:
        self.record(msg.subject, msg.data)

    def record(self, subject: str, data: bytes) -> None:
        """One heartbeat; a malformed one is ignored (a worker must not stop the scaler)."""
        beat = load_beats.decode(subject, data)
        if beat is None:
            log.debug("ignored a malformed worker heartbeat on %s", subject)
            return
        self.inflight[beat.pod] = beat.inflight
        self._waiting.setdefault(beat.durable, {})[beat.pod] = _Waiting(beat.waiting, self.clock())
        self._forget_gone()

    def waiting(self, durable: str) -> int:
        """In-flight tasks of the pool's pods heard from recently that wait out an outage."""
        self._forget_gone()
        return sum(w.count for w in self._waiting.get(durable, {}).values())

    def _forget_gone(self) -> None:
        """Drop the pods not heard from for HEARTBEAT_GONE_SECONDS, from every pool: pods come
        and go with every scale-down and rollout, and each new name would otherwise stay
        here for the operator's lifetime."""
        cutoff = self.clock() - HEARTBEAT_GONE_SECONDS
        for pods in self._waiting.values():
            for pod in [p for p, w in pods.items() if w.seen < cutoff]:
                del pods[pod]
                self.inflight.pop(pod, None)

    def forget(self, pod: str) -> None:
        """A pod stopped on purpose (local mode): its last heartbeat no longer counts."""
        self.inflight.pop(pod, None)
        for pods in self._waiting.values():
            pods.pop(pod, None)

    @staticmethod
    async def detach(sub: Subscription) -> None:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
