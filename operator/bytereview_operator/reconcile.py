"""One WorkerPool's control loop, as plain async code (kopf only schedules it).

Each step reads the pool's consumer from JetStream's API (answered by the consumer's
leader, not a follower's monitoring page), asks the policy for a replica count, marks idle
pods cheap to delete before a scale-down, patches the Deployment's /scale (logging each
change once at INFO, with the policy's reason), and returns the status to write. A
missing stream or consumer is a condition, never "scale to max".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import nats.errors
from nats.js import JetStreamContext

from bytereview.core.streams import queue_counts
from bytereview_operator.estimates import Observation
from bytereview_operator.heartbeats import WorkerHeartbeats
from bytereview_operator.kube import DELETION_COST, KubeApi, KubeError
from bytereview_operator.policy import MAX_HOLD_FACTOR, Decision, decide, next_hold
from bytereview_operator.pool_policy import PoolPolicy

log = logging.getLogger(__name__)


class InvalidSpec(ValueError):
    """A WorkerPool spec that cannot be acted on; reported as a condition."""


@dataclass(frozen=True, slots=True)
class PoolSpec:
    deployment: str
    stream: str
    consumer: str
    policy: PoolPolicy
    poll_seconds: float

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> PoolSpec:
        try:
            policy = PoolPolicy(
                min_replicas=int(spec.get("minReplicas", 0)),
                max_replicas=int(spec.get("maxReplicas", 10)),
                per_replica_concurrency=int(spec.get("perReplicaConcurrency", 1)),
                expected_task_seconds=float(spec.get("expectedTaskSeconds", 10)),
                target_drain_seconds=float(spec.get("targetDrainSeconds", 60)),
                scale_down_stabilization_seconds=float(
                    spec.get("scaleDownStabilizationSeconds", 120)
                ),
                max_ack_pending=int(spec.get("maxAckPending", 1000)),
                target_wait_seconds=float(spec.get("targetWaitSeconds", 0)),
            )
            parsed = cls(
                deployment=str(spec["deployment"]),
                stream=str(spec["stream"]),
                consumer=str(spec["consumer"]),
                policy=policy,
                poll_seconds=float(spec.get("pollSeconds", 5)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidSpec(f"invalid WorkerPool spec: {exc}") from exc
        if parsed.poll_seconds < 1:
            raise InvalidSpec("pollSeconds must be at least 1")
        return parsed


@dataclass
class ScaleState:
    """What the policy remembers between polls: the observations of the service window
    (task times are measured over it) and the recommendations inside the scale-down
    stabilization window."""

    history: list[Observation] = field(default_factory=list)
    recent: list[tuple[float, int]] = field(default_factory=list)
    last_scale_down: float | None = None
    # The scale-down window in force (next_hold lengthens it when scale-downs prove premature).
    hold: float | None = None
    last_scale_up: float | None = None

    def decide(self, policy: PoolPolicy, observation: Observation, current: int) -> Decision:
        now = observation.time
        horizon = max(policy.service_window_seconds, policy.rate_window_seconds)
        if policy.target_wait_seconds == 0 and policy.recurring_hold_seconds > 0:
            # Whether bursts recur is read from burst_memory_seconds of arrivals (a
            # wait-targeted pool does not ask: its rate estimate keeps the shorter history).
            horizon = max(horizon, policy.burst_memory_seconds + policy.rate_window_seconds)
        kept = [o for o in self.history if now - o.time < horizon]
        # One observation older than the horizon stays, so the window is covered whole.
        older = self.history[: len(self.history) - len(kept)][-1:]
        self.history = [*older, *kept, observation]
        hold = policy.hold_seconds if self.hold is None else self.hold
        decision = decide(
            policy,
            self.history,
            current,
            self.recent,
            self.last_scale_down,
            hold,
            self.last_scale_up,
        )
        if decision.replicas > current:
            self.last_scale_up = now
        self.hold = next_hold(
            policy, hold, now, self.last_scale_down, scaled_up=decision.replicas > current
        )
        if decision.replicas < current:
            self.last_scale_down = now
        keep = max(policy.hold_seconds * MAX_HOLD_FACTOR, policy.recurring_hold_seconds)
        self.recent = [(t, r) for t, r in self.recent if now - t <= keep]
        self.recent.append((observation.time, decision.recommended))
        return decision


async def observe_consumer(
    js: JetStreamContext, stream: str, consumer: str, now: float
) -> Observation | None:
    """One reading of a pool's queue; None when the stream or the pool's consumer is missing.

    True counts, from the stream and every consumer on it (a fair queue has one consumer
    per tenant lane, `bytereview.core.streams.QueueSpec`), whatever the order of the acks:
    - arrivals = the stream's last sequence: every message ever stored; a redelivery does
      not move it.
    - A work-queue stream drops a message once it is acked or terminated (or deleted as a
      dead letter), so what it holds is exactly the unfinished work: completions =
      arrivals - messages. In flight = the consumers' `num_ack_pending` summed (running,
      nak'ed, or waiting out AckWait); pending = messages - in flight, which counts the
      messages of lanes no worker has pulled from yet (they have no consumer).
    Not `ack_floor` (the highest *contiguous* ack: one slow message holds it back while
    everything after it completes) and not `delivered.consumer_seq` (it counts redeliveries).
    `consumer` (the pool's base consumer, declared by its workers) must exist.
    """
    counts = await queue_counts(js, stream)
    if counts is None or consumer not in counts.consumers:
        return None
    return Observation(
        time=now,
        pending=counts.pending,
        in_flight=counts.in_flight,
        arrived=counts.arrived,
        completed=counts.completed,
    )


def _condition(
    kind: str, ok: bool, reason: str, message: str, before: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """A status condition. Its lastTransitionTime is `before`'s (the condition as the
    resource last said it) while the status stays the same: the Kubernetes convention, and
    it changed on every poll, so "since when" could not be read from it."""
    status = "True" if ok else "False"
    kept = before or {}
    since = kept.get("lastTransitionTime") if kept.get("status") == status else None
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@dataclass
class PoolController:
    """State kept between polls of one pool: recent observations and recommendations."""

    kube: KubeApi
    js: JetStreamContext
    namespace: str
    body: dict[str, Any]
    # Latest in-flight count per pod, and the tasks waiting out an outage per pool, from
    # worker heartbeats.
    heartbeats: WorkerHeartbeats = field(default_factory=WorkerHeartbeats)
    state: ScaleState = field(default_factory=lambda: ScaleState())
    clock: Any = time.monotonic
    # The Ready condition last said (None: read from the resource's status at first).
    last_ready: dict[str, Any] | None = None

    async def observe(self, spec: PoolSpec) -> Observation | None:
        """The queue's counts, and how many of its in-flight tasks the pool's workers say
        are waiting on a dependency (its outage or its quota)."""
        observation = await observe_consumer(
            self.js, spec.stream, spec.consumer, float(self.clock())
        )
        if observation is None:
            return None
        return dataclasses.replace(observation, waiting=self.heartbeats.waiting(spec.consumer))

    def ready(self, ok: bool, reason: str, message: str) -> dict[str, str]:
        """The Ready condition, remembered for the next poll's lastTransitionTime."""
        if self.last_ready is None:
            said = (self.body.get("status") or {}).get("conditions") or []
            self.last_ready = next((c for c in said if c.get("type") == "Ready"), None)
        self.last_ready = _condition("Ready", ok, reason, message, self.last_ready)
        return self.last_ready

    def waiting_for_nats(self) -> dict[str, Any]:
        """The status while the operator's NATS connection has not answered yet."""
        message = "NATS has not answered yet; replicas left as they are"
        return {"conditions": [self.ready(False, "QueueUnreadable", message)]}

    async def step(self, raw_spec: Mapping[str, Any]) -> dict[str, Any]:
        """One poll; returns the WorkerPool status."""
        try:
            spec = PoolSpec.parse(raw_spec)
        except InvalidSpec as exc:
            return {"conditions": [self.ready(False, "InvalidSpec", str(exc))]}
        try:
            observation = await self.observe(spec)
        except nats.errors.Error as exc:
            # NATS down or unreachable: say so rather than leave the last poll's "Ready".
            queue = f"{spec.stream}/{spec.consumer}"
            message = f"cannot read {queue}: {exc!r}; replicas left as they are"
            return {"conditions": [self.ready(False, "QueueUnreadable", message)]}
        if observation is None:
            message = f"consumer {spec.stream}/{spec.consumer} not found; replicas left as they are"
            return {"conditions": [self.ready(False, "ConsumerMissing", message)]}
        try:
            current, selector = await self.kube.get_scale(self.namespace, spec.deployment)
        except KubeError as exc:
            if exc.status != 404:
                raise
            message = f"Deployment {spec.deployment} not found; nothing to scale"
            return {"conditions": [self.ready(False, "DeploymentMissing", message)]}
        decision = self.state.decide(spec.policy, observation, current)
        status: dict[str, Any] = {
            "observedLag": observation.pending,
            "inFlight": observation.in_flight,
            "waitingOutOutage": observation.waiting,
            "arrivalRate": round(decision.arrival_rate, 3),
            "completionRate": round(decision.completion_rate, 3),
            "taskSeconds": round(decision.task_seconds, 3),
            "desiredReplicas": decision.replicas,
            "currentReplicas": current,
            "conditions": [self.ready(True, "Polling", decision.reason)],
        }
        if decision.replicas != current:
            if decision.replicas < current:
                await self._mark_idle_pods(selector)
            await self.kube.set_scale(self.namespace, spec.deployment, decision.replicas)
            # Once per change, as soon as it is made (before the event, which may fail): the
            # next poll reads the new count back and, holding it, says nothing. The policy's
            # rule and inputs, so that a scaling can be explained from the log alone.
            log.info(
                "WorkerPool %s/%s: %s %d -> %d replicas (%s; pending %d, in flight %d, "
                "arrivals %.3g/s, completions %.3g/s, task %.3g s)",
                self.namespace,
                self.body.get("metadata", {}).get("name", "?"),
                spec.deployment,
                current,
                decision.replicas,
                decision.reason,
                observation.pending,
                observation.in_flight,
                decision.arrival_rate,
                decision.completion_rate,
                decision.task_seconds,
            )
            when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            status.update(
                currentReplicas=decision.replicas,
                lastScaleTime=when,
                lastScaleReason=f"{current} -> {decision.replicas}: {decision.reason}",
            )
            await self.kube.event(
                self.namespace,
                self.body,
                "Scaled",
                f"{spec.deployment}: {current} -> {decision.replicas} replicas ({decision.reason}; "
                f"pending {observation.pending}, in flight {observation.in_flight})",
            )
        return status

    async def _mark_idle_pods(self, selector: str) -> None:
        """Deletion cost = in-flight work, so the ReplicaSet removes idle pods first."""
        if not selector:
            return
        for pod in await self.kube.list_pods(self.namespace, selector):
            name = pod["metadata"]["name"]
            cost = self.heartbeats.inflight.get(name, 0)
            current = pod["metadata"].get("annotations", {}).get(DELETION_COST)
            if current != str(cost):
                await self.kube.annotate_pod(self.namespace, name, {DELETION_COST: str(cost)})
