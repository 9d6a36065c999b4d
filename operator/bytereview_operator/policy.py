"""The scaling policy: a pure function from consumer observations to a replica count.

Replicas come from Little's law: enough workers to keep up with arrivals and to
drain the backlog within the target drain time. Scale-up uses the newest
observations only (a burst is answered at the next poll); scale-down takes the
highest recommendation of the stabilization window, so it is slow and safe.
From zero, the first pending message activates one replica or more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PoolPolicy:
    min_replicas: int = 0
    max_replicas: int = 10
    # Messages one replica works on at once (the worker's concurrency).
    per_replica_concurrency: int = 1
    # Expected seconds per message, used until completions give a measured rate.
    expected_task_seconds: float = 10.0
    # The backlog should be gone within this many seconds.
    target_drain_seconds: float = 60.0
    scale_down_stabilization_seconds: float = 120.0
    # The consumer's MaxAckPending: more replicas than it can feed would sit idle.
    max_ack_pending: int = 1000

    def __post_init__(self) -> None:
        if self.min_replicas < 0 or self.max_replicas < max(self.min_replicas, 1):
            raise ValueError("need 0 <= min_replicas <= max_replicas and max_replicas >= 1")
        if self.per_replica_concurrency < 1 or self.expected_task_seconds <= 0:
            raise ValueError("per_replica_concurrency >= 1 and expected_task_seconds > 0")
        if self.target_drain_seconds <= 0 or self.scale_down_stabilization_seconds < 0:
            raise ValueError("target_drain_seconds > 0 and stabilization >= 0")
        if self.max_ack_pending < 1:
            raise ValueError("max_ack_pending >= 1")

    @property
    def ceiling(self) -> int:
        """No more replicas than MaxAckPending can keep busy, nor than max_replicas.

        An explicit min_replicas wins over the MaxAckPending bound: the operator asked for it.
        """
        fed = math.ceil(self.max_ack_pending / self.per_replica_concurrency)
        return max(1, self.min_replicas, min(self.max_replicas, fed))


@dataclass(frozen=True, slots=True)
class Observation:
    """One reading of a consumer (from its leader, via consumer_info)."""

    time: float
    pending: int  # num_pending: in the stream, not yet delivered
    in_flight: int  # num_ack_pending: delivered, not yet acknowledged
    arrived: int  # cumulative messages that reached the consumer (delivered seq + pending)
    completed: int  # cumulative acknowledged messages (ack floor)

    @property
    def backlog(self) -> int:
        return self.pending + self.in_flight


@dataclass(frozen=True, slots=True)
class Decision:
    replicas: int
    recommended: int
    reason: str
    arrival_rate: float
    completion_rate: float
    service_rate: float


def _rate(newer: Observation, older: Observation, attr: str) -> float:
    elapsed = newer.time - older.time
    if elapsed <= 0:
        return 0.0
    return max(0.0, float(getattr(newer, attr) - getattr(older, attr)) / elapsed)


def recommend(
    policy: PoolPolicy, observations: Sequence[Observation], current: int
) -> tuple[int, float, float, float]:
    """(replicas wanted now, arrival rate, completion rate, per-replica service rate)."""
    latest = observations[-1]
    arrival = completion = 0.0
    if len(observations) >= 2:
        arrival = _rate(latest, observations[-2], "arrived")
        completion = _rate(latest, observations[-2], "completed")
    prior = policy.per_replica_concurrency / policy.expected_task_seconds
    service = prior
    # Measured only when replicas were saturated; an idle pool says nothing about capacity.
    if (
        current > 0
        and completion > 0
        and latest.in_flight >= current * policy.per_replica_concurrency
    ):
        service = completion / current
    if latest.backlog == 0 and arrival == 0:
        return policy.min_replicas, arrival, completion, service
    demand = arrival + latest.backlog / policy.target_drain_seconds
    wanted = math.ceil(demand / service - 1e-9)
    # Never more replicas than there are messages to work on.
    wanted = min(wanted, math.ceil(latest.backlog / policy.per_replica_concurrency) or 1)
    return max(wanted, 1), arrival, completion, service


def decide(
    policy: PoolPolicy,
    observations: Sequence[Observation],
    current: int,
    recent: Sequence[tuple[float, int]],
) -> Decision:
    """The replica count to set now.

    `recent` holds (time, recommended) pairs from earlier polls; those inside the
    stabilization window hold scale-down back (the highest one wins).
    """
    if not observations:
        return Decision(current, current, "no observations yet", 0.0, 0.0, 0.0)
    now = observations[-1].time
    wanted, arrival, completion, service = recommend(policy, observations, current)
    clamped = min(max(wanted, policy.min_replicas), policy.ceiling)
    if clamped > current:
        reason = "activate from zero" if current == 0 else "scale up: backlog or arrivals grew"
        return Decision(clamped, wanted, reason, arrival, completion, service)
    window = [r for t, r in recent if now - t <= policy.scale_down_stabilization_seconds]
    held = min(max([clamped, *window]), current)
    held = min(max(held, policy.min_replicas), policy.ceiling)
    if held < current:
        reason = "scale down: stable below current for the whole window"
    elif clamped < current:
        reason = "hold: waiting out the scale-down stabilization window"
    else:
        reason = "steady"
    return Decision(held, wanted, reason, arrival, completion, service)
