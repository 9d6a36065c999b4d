"""The shapes of traffic the policy tells apart: a rising load, bursts that recur, a queue
that grew without a burst, idle pods left by a burst."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence

from bytereview_operator.estimates import Estimate, Observation, since_reset
from bytereview_operator.pool_policy import PoolPolicy

# A rise must exceed this many Poisson standard errors of the two halves' counts. At two,
# slow ramps were missed (a pod added for the queue went when it emptied, and came back).
# One was once rejected for flipping the diurnal wave on fresh seeds, but that was
# measured while the simulation stopped counting at the horizon (KEDA's last scale-down
# uncounted); counted to the end, one keeps the wave under KEDA's direction changes on
# both seed sets (docs/benchmarks.md, Autoscaler simulation).
TREND_STANDARD_ERRORS = 1.0


def rising_rate(policy: PoolPolicy, observations: Sequence[Observation]) -> float:
    """The arrival rate now projected from a rising trend, or 0 when arrivals do not rise.

    The service window's two halves are compared (the history the policy keeps anyway);
    in each, the two largest polls are left out (the rest scaled up to the half), so a
    burst is not read as a trend. Rising = the newer half exceeds the older by more than
    TREND_STANDARD_ERRORS Poisson standard errors; the linear trend through the halves'
    means, at now.
    """
    history = since_reset(observations)
    now = history[-1].time
    half = policy.service_window_seconds / 2
    if history[0].time > now - 2 * half:
        return 0.0  # not a whole window of history yet
    newer: list[int] = []
    older: list[int] = []
    for before, after in itertools.pairwise(history):
        step = max(0, after.arrived - before.arrived)
        if after.time > now - half:
            newer.append(step)
        elif after.time > now - 2 * half:
            older.append(step)

    def sustained(steps: list[int]) -> float:
        if len(steps) < 3:
            return 0.0
        kept = sorted(steps)[:-2]
        return sum(kept) * len(steps) / len(kept)

    old, new = sustained(older), sustained(newer)
    if new - old <= TREND_STANDARD_ERRORS * math.sqrt(max(old + new, 1.0)):
        return 0.0
    # The halves' means are the rates at their midpoints, half a window apart.
    return (1.5 * new - 0.5 * old) / half


def _queue_history(
    policy: PoolPolicy, observations: Sequence[Observation], est: Estimate
) -> tuple[float | None, bool]:
    """(When the queue last held a message within the service window, or None; whether it
    peaked there at a burst: burst_queue_factor x its steady length, arrival rate x target,
    at least one)."""
    now = observations[-1].time
    emptied: float | None = None
    peak = 0
    for obs in reversed(observations):
        if now - obs.time > policy.service_window_seconds:
            break
        if obs.pending > 0 and emptied is None:
            emptied = obs.time
        peak = max(peak, obs.pending)
    steady = max(est.sustained_upper * policy.target_wait_seconds, 1.0)
    return emptied, peak >= policy.burst_queue_factor * steady


def after_burst(policy: PoolPolicy, observations: Sequence[Observation], est: Estimate) -> bool:
    """Whether the queue emptied less than burst_hold_waits wait targets ago after a burst
    (a peak of burst_queue_factor x its steady length within the service window)."""
    emptied, burst = _queue_history(policy, observations, est)
    hold = policy.burst_hold_waits * policy.target_wait_seconds
    return burst and emptied is not None and observations[-1].time - emptied < hold


def grown_within(
    policy: PoolPolicy,
    observations: Sequence[Observation],
    est: Estimate,
    last_scale_up: float | None,
    waits: float,
) -> bool:
    """Whether the last scale-up, less than `waits` wait targets ago, was for a queue that
    grew without a burst.

    Such a queue is the load outgrowing the pods, and at the start of a rise nothing else
    says so: the arrival rate averages arrivals from before the rise, and the trend test
    needs a whole service window of them. Removing the pod as soon as the queue emptied
    took it away just before the load reached it (on slow ramps it came back within
    minutes: a direction change each way). So for scale_up_hold_waits every pod stays, and
    for grown_round_up_waits the pods the load keeps busy, rounded up (idle_pods_kept). A
    burst's pods are not held by this: its queue is a one-off, and after_burst decides for
    it (holding them after every burst cost more pod-seconds than KEDA).
    """
    if last_scale_up is None:
        return False
    if observations[-1].time - last_scale_up >= waits * policy.target_wait_seconds:
        return False
    return not _queue_history(policy, observations, est)[1]


def bursts_recur(policy: PoolPolicy, observations: Sequence[Observation]) -> bool:
    """Whether the last burst_memory_seconds hold two bursts or more.

    A burst: one poll, or two (a burst that straddles two polls), bringing more than
    burst_step_factor x the median arrivals per poll of the rate window before it (and more
    than one replica's slots). Such polls less than burst_merge_seconds apart are one burst:
    a batch published over a few seconds, with a stall in between, is not two (at one-second
    polls a quiet poll in the middle of one upload counted twice and held the pods of a
    single burst recurring_hold_seconds). Merging over a whole rate window instead read
    separate spikes a minute apart as one and flipped the extract pool more than KEDA on
    seeds 201-215 (4.20 direction changes against 4.07). More polls than two are a level
    that holds: the traffic's own (a ramp or a wave rises, it does not jump)."""
    now = observations[-1].time
    steps = [
        (after.time, after.arrived - before.arrived)
        for before, after in itertools.pairwise(observations)
        if now - after.time <= policy.burst_memory_seconds + policy.rate_window_seconds
    ]
    bursts = 0
    run: list[float] = []  # when the big polls of the burst in progress came
    for i, (when, step) in enumerate(steps):
        if run and when - run[-1] > policy.burst_merge_seconds:
            bursts += len(run) <= 2
            run = []
        before = [
            s for t, s in steps[:i] if when - t <= policy.rate_window_seconds and t not in run
        ]
        usual = statistics.median(before) if len(before) >= 3 else math.inf
        if now - when <= policy.burst_memory_seconds and step > policy.burst_step_factor * max(
            usual, policy.per_replica_concurrency
        ):
            run.append(when)
    return bursts + (0 < len(run) <= 2) >= 2
