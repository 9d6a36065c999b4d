"""A pool's scaling settings (the WorkerPool spec's, with the policy's own defaults), checked."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PoolPolicy:
    min_replicas: int = 0
    max_replicas: int = 10
    # Messages one replica works on at once (the worker's concurrency).
    per_replica_concurrency: int = 1
    # Expected seconds per message: the prior until completions are measured.
    expected_task_seconds: float = 10.0
    # Waiting messages should all have started within this many seconds.
    target_drain_seconds: float = 60.0
    scale_down_stabilization_seconds: float = 120.0
    # The consumer's MaxAckPending: more replicas than it can feed would sit idle.
    max_ack_pending: int = 1000
    # Dead band: a change smaller than this fraction of the current count (and at least one
    # replica) is not made; the HPA's default tolerance.
    tolerance: float = 0.1
    # Square-root staffing margin: headroom x sqrt(busy slots) spare slots.
    headroom: float = 1.5
    # Arrivals are averaged over this window (longer when it holds fewer than rate_events
    # arrivals); task times over the service window.
    rate_window_seconds: float = 60.0
    rate_events: int = 30
    service_window_seconds: float = 600.0
    # How many tasks' worth of weight the expected_task_seconds prior carries.
    prior_tasks: float = 2.0
    # 0: provision the arrival rate (square-root staffing) and drain the queue within
    # target_drain_seconds. Otherwise: waiting messages should start within this many
    # seconds, and the queue carries the load (see the module's docstring).
    target_wait_seconds: float = 0.0
    # Wait-targeted pools: inside the hold after a scale-down (this many wait targets,
    # doubled after premature scale-downs), replicas go up again only for waiting messages
    # the current ones would start later than reversal_wait_factor x the target.
    reversal_wait_targets: float = 6.0
    reversal_wait_factor: float = 1.5
    # Wait-targeted pools, after a premature scale-down: idle pods left by a burst (the queue
    # peaked at burst_queue_factor x its steady length, arrival rate x target, within the
    # service window) are kept this many wait targets after the queue emptied.
    burst_hold_waits: float = 0.75
    burst_queue_factor: float = 3.0
    # Wait-targeted pools: after a scale-up for a queue that was not a burst, no scale-down
    # for this many wait targets (see traffic.grown_within), and for grown_round_up_waits the pods
    # kept when nothing waits are the load rounded up, not down (see idle_pods_kept).
    scale_up_hold_waits: float = 1.0
    grown_round_up_waits: float = 2.5
    # Rate-sized pools whose traffic comes in recurring bursts (bursts_recur: two or more
    # in burst_memory_seconds, a burst being a poll or two of more than burst_step_factor x
    # the minute before's arrivals per poll): the drain target is burst_drain_factor x
    # target_drain_seconds (fewer pods at each burst) and the scale-down window is
    # recurring_hold_seconds (those pods held until the next burst, likely, comes). 0: off.
    burst_drain_factor: float = 2.0
    recurring_hold_seconds: float = 480.0
    burst_memory_seconds: float = 1200.0
    burst_step_factor: float = 10.0
    # Big polls closer than this are one burst (an upload that stalled for a poll or two).
    burst_merge_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.min_replicas < 0 or self.max_replicas < max(self.min_replicas, 1):
            raise ValueError("need 0 <= min_replicas <= max_replicas and max_replicas >= 1")
        if self.per_replica_concurrency < 1 or self.expected_task_seconds <= 0:
            raise ValueError("per_replica_concurrency >= 1 and expected_task_seconds > 0")
        if self.target_drain_seconds <= 0 or self.scale_down_stabilization_seconds < 0:
            raise ValueError("target_drain_seconds > 0 and stabilization >= 0")
        if self.max_ack_pending < 1:
            raise ValueError("max_ack_pending >= 1")
        if not 0 <= self.tolerance < 1 or self.headroom < 0 or self.prior_tasks <= 0:
            raise ValueError("need 0 <= tolerance < 1, headroom >= 0 and prior_tasks > 0")
        if self.target_wait_seconds < 0:
            raise ValueError("target_wait_seconds >= 0 (0: size by the arrival rate)")
        if self.reversal_wait_targets < 0 or self.reversal_wait_factor < 1:
            raise ValueError("need reversal_wait_targets >= 0 and reversal_wait_factor >= 1")
        if self.burst_hold_waits < 0 or self.burst_queue_factor < 1:
            raise ValueError("need burst_hold_waits >= 0 and burst_queue_factor >= 1")
        if self.scale_up_hold_waits < 0 or self.grown_round_up_waits < 0:
            raise ValueError("need scale_up_hold_waits >= 0 and grown_round_up_waits >= 0")
        if self.burst_drain_factor < 1 or self.recurring_hold_seconds < 0:
            raise ValueError("need burst_drain_factor >= 1 and recurring_hold_seconds >= 0")
        if self.burst_memory_seconds <= 0 or self.burst_step_factor < 1:
            raise ValueError("need burst_memory_seconds > 0 and burst_step_factor >= 1")
        if self.burst_merge_seconds < 0:
            raise ValueError("need burst_merge_seconds >= 0")
        if self.rate_window_seconds <= 0 or self.service_window_seconds <= 0:
            raise ValueError("rate and service windows >= 0 seconds")

    @property
    def ceiling(self) -> int:
        """No more replicas than MaxAckPending can keep busy, nor than max_replicas.

        An explicit min_replicas wins over the MaxAckPending bound: the operator asked for it.
        """
        fed = math.ceil(self.max_ack_pending / self.per_replica_concurrency)
        return max(1, self.min_replicas, min(self.max_replicas, fed))

    @property
    def queue_seconds(self) -> float:
        """Waiting messages should all have started within this many seconds."""
        return self.target_wait_seconds or self.target_drain_seconds

    @property
    def hold_seconds(self) -> float:
        """The hold after a scale-down before next_hold lengthens it: the stabilization
        window, or for a wait-targeted pool reversal_wait_targets wait targets."""
        if self.target_wait_seconds > 0:
            return self.reversal_wait_targets * self.target_wait_seconds
        return self.scale_down_stabilization_seconds

    @property
    def reversal_seconds(self) -> float:
        """Inside the hold, a scale-up needs waiting messages the current replicas would
        start later than this."""
        if self.target_wait_seconds > 0:
            return self.reversal_wait_factor * self.target_wait_seconds
        return self.target_drain_seconds

    def clamp(self, replicas: int) -> int:
        return min(max(replicas, self.min_replicas), self.ceiling)
