"""The scaling policy: a pure function from consumer observations to a replica count.

Replicas come from Little's law, counted in worker slots (concurrent tasks):
- keeping up with arrivals takes `arrival rate x task seconds` busy slots, plus a
  square-root safety margin (square-root staffing: the margin that keeps the chance of
  waiting modest grows with the square root of the load, not with the load). The rate is
  the sustained one: a burst is not a rate (its waiting messages are the next term's);
- the messages still waiting (`pending`; running tasks are not backlog, their slots are
  already counted in the load) should be started within the target drain time, and never
  take more than one slot each.

The task time is measured, not assumed: busy slot-seconds (the in-flight count integrated
over time) divided by completions, over a long window (ten minutes by default), with the
spec's `expectedTaskSeconds` as a prior worth a couple of tasks. One 5-second window says
nothing about a pool of 20-second tasks; ten minutes of them do.

A slow pool of one-at-a-time pods (ingest: one archive per pod, tens of seconds each) is
sized by a wait target instead (`target_wait_seconds`). Provisioning its arrival rate with
a margin leaves whole pods idle: at a load of 2.5 busy slots the margin adds 2.4 slots, so
5 pods run half busy, where a pool whose queue carries the load runs near 100% (KEDA at
lagThreshold 10 does so with ~9 waiting per pod). With a wait target the queue itself
carries the load: the pool gets the slots that start every waiting message within the
target (`pending x task seconds / target`, no rate term); at steady traffic the queue
settles where its wait is the target (Little's law), with every pod busy. Idle pods are
removed as soon as nothing waits (a one-slot pod with nothing to do costs its whole price,
a new one starts in seconds), but never below the pods the arrival rate keeps busy; while
messages wait, no pod is removed (they will be busy as soon as the queue reaches them).

Hysteresis, so direction changes stay rare: up at once when the wanted count leaves the
dead band, down only to the highest recommendation of the whole stabilization window (so
never sooner than that window after the last scale-up) and only as far as the upper end of
the arrival rate's noise allows (one standard error above the estimate: a quieter minute is
not yet less traffic), and up again inside the window
after a scale-down only for work the current replicas cannot start in time; when that
happens the window doubles (next_hold), so traffic that comes back in bursts is held through.
A wait-targeted pool holds its idle pods for nothing (they cost their whole price: holding
them for one task time or more spent more pod-seconds than KEDA on the diurnal wave), so its
hysteresis is on the way up instead: inside a hold of six wait targets after a scale-down
(doubled like the window), a scale-up needs messages the current pods would start later
than 1.5 x the target. A queue that noise lengthened for a while is carried by the pods
there are (they are all busy), and the direction does not flip back.
Two shapes still flipped it. A rising load: the arrival rate is averaged over at least
rate_events arrivals, which at a few arrivals a minute reaches back before the rise, so a
pod added for a queue went again when the queue emptied, and came back minutes later. When
the arrivals of the newer half of the service window exceed the older half's by more than
one Poisson standard error (the two largest polls left out of each, so a burst is not a
trend), the pods kept are the trend's rate now, rounded up; and a pod added for a queue that
was not a burst stays scale_up_hold_waits wait targets (the trend test needs minutes of
arrivals, which the start of a rise does not have yet), and for grown_round_up_waits the
pods kept are the load rounded up (the trend test, on Poisson counts, still missed one
ramp in five; fewer pods than the load are outgrown again). Bursts that come back: after a
scale-down proved premature (the hold was lengthened), idle pods left by a burst (a queue
that peaked at burst_queue_factor x its steady length) stay burst_hold_waits wait targets
after the queue emptied, so a burst that follows closely finds them. Only then: holding
them after every burst cost more pod-seconds than KEDA.
A rate-sized pool whose traffic comes in recurring bursts (bursts_recur) drains each burst
in burst_drain_factor x the drain target and holds those fewer pods recurring_hold_seconds:
holding the pods of a 30 s drain long enough to merge bursts as KEDA does cost more pod
time than KEDA's.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from collections.abc import Sequence
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
    # for this many wait targets (see scale_up_held), and for grown_round_up_waits the pods
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


@dataclass(frozen=True, slots=True)
class Observation:
    """One reading of a consumer (from its leader, via consumer_info).

    `arrived` and `completed` are true cumulative counts (see reconcile.observe_consumer):
    every message that reached the queue, and every message that left it for good (acked,
    terminated, or removed as a dead letter). A redelivery counts in neither.
    """

    time: float
    pending: int  # num_pending: in the stream, not yet delivered
    in_flight: int  # num_ack_pending: delivered, not yet acknowledged (includes redeliveries due)
    arrived: int
    completed: int

    @property
    def backlog(self) -> int:
        return self.pending + self.in_flight


@dataclass(frozen=True, slots=True)
class Estimate:
    """What the policy measured from the observations."""

    arrival_rate: float  # messages per second, over the rate window
    # Arrivals per second without the largest jump between two polls, over a window of at
    # least rate_events arrivals: the load to provision for.
    sustained_rate: float
    # One standard error above it (a Poisson count of n is known to about sqrt(n)): the
    # rate a scale-down must still cover, so noise alone does not take replicas away.
    sustained_upper: float
    completion_rate: float  # messages per second, over the rate window
    task_seconds: float  # mean busy time per message, over the service window
    measured_tasks: float  # completions behind task_seconds (0: the prior alone)


@dataclass(frozen=True, slots=True)
class Decision:
    replicas: int
    recommended: int
    reason: str
    arrival_rate: float
    completion_rate: float
    # Messages one replica completes per second (concurrency / task seconds).
    service_rate: float
    # The measured mean task time behind service_rate (the prior until tasks complete).
    task_seconds: float = 0.0


def since_reset(observations: Sequence[Observation]) -> Sequence[Observation]:
    """The observations after the last time a counter went backwards (a recreated stream)."""
    start = 0
    for i in range(1, len(observations)):
        older, newer = observations[i - 1], observations[i]
        if newer.arrived < older.arrived or newer.completed < older.completed:
            start = i
    return observations[start:]


def _window_start(observations: Sequence[Observation], seconds: float) -> int:
    """Index of the newest observation at least `seconds` old, else of the oldest one."""
    now = observations[-1].time
    for i in range(len(observations) - 2, -1, -1):
        if now - observations[i].time >= seconds:
            return i
    return 0


def _rate(
    observations: Sequence[Observation],
    seconds: float,
    attr: str,
    *,
    events: int = 0,
    trim: bool = False,
) -> tuple[float, float]:
    """(Per-second increase of a counter over the last `seconds`, the increase counted).

    The window is stretched further back (within the history) until it holds `events`
    increments: a rate counted from a handful of arrivals is mostly noise. With `trim`, the
    largest increase between two polls counts as the mean of the others: a burst is a
    one-off, not a rate to provision for (the waiting messages it leaves are the drain
    term's).
    """
    latest = observations[-1]
    first = _window_start(observations, seconds)

    def counted(total: float, largest: float, steps: int) -> float:
        if not trim:
            return total
        if steps < 2:
            return 0.0  # one step cannot tell a rate from a burst: the drain term has it
        # The largest step stands in as the mean of the others: no bias on steady traffic.
        return (total - largest) * steps / (steps - 1)

    total = largest = 0.0
    older_total = older_largest = 0.0  # without the newest step
    last = len(observations) - 1
    start = last
    for i in range(last, 0, -1):
        step = max(0.0, float(getattr(observations[i], attr) - getattr(observations[i - 1], attr)))
        total += step
        largest = max(largest, step)
        if i < last:
            older_total += step
            older_largest = max(older_largest, step)
        start = i - 1
        # How far back to look is settled without the newest step, so a larger newest step
        # (more arrivals) never shortens the window and never lowers the rate.
        if start <= first and counted(older_total, older_largest, last - 1 - start) >= events:
            break
    elapsed = latest.time - observations[start].time
    if elapsed <= 0:
        return 0.0, 0.0
    events_counted = counted(total, largest, len(observations) - 1 - start)
    return events_counted / elapsed, events_counted


def estimate(policy: PoolPolicy, observations: Sequence[Observation]) -> Estimate:
    """Arrival and completion rates, and the mean task time (Little's law on the slots)."""
    history = since_reset(observations)
    latest = history[-1]
    window = history[_window_start(history, policy.service_window_seconds) :]
    first = window[0]
    busy = 0.0  # slot-seconds spent on messages (trapezoid between polls)
    for older, newer in itertools.pairwise(window):
        busy += (older.in_flight + newer.in_flight) / 2 * max(0.0, newer.time - older.time)
    # Messages in flight at the window's edges are half done on average: count the change
    # as half-tasks, so a window that opens on an idle pool and closes on a full one does
    # not read the unfinished half as slowness.
    tasks = max(
        0.0, (latest.completed - first.completed) + (latest.in_flight - first.in_flight) / 2
    )
    prior = policy.prior_tasks
    task_seconds = (prior * policy.expected_task_seconds + busy) / (prior + tasks)
    sustained, arrivals = _rate(
        history, policy.rate_window_seconds, "arrived", events=policy.rate_events, trim=True
    )
    return Estimate(
        arrival_rate=_rate(history, policy.rate_window_seconds, "arrived")[0],
        sustained_rate=sustained,
        sustained_upper=sustained * (1 + 1 / math.sqrt(arrivals)) if arrivals > 0 else 0.0,
        completion_rate=_rate(history, policy.rate_window_seconds, "completed")[0],
        task_seconds=task_seconds,
        measured_tasks=tasks,
    )


def wanted_replicas(
    policy: PoolPolicy, latest: Observation, est: Estimate, *, cautious: bool = False
) -> int:
    """Replicas for the load and the waiting messages, before clamping and hysteresis.

    `cautious` provisions for the upper end of the arrival rate's noise (for scale-down).
    """
    if latest.backlog == 0 and est.arrival_rate == 0:
        return 0
    # Starting every waiting message within the drain time (or the wait target); a message
    # never needs more than its own slot, however short the target.
    drain = min(float(latest.pending), latest.pending * est.task_seconds / policy.queue_seconds)
    if policy.target_wait_seconds > 0:
        slots = drain  # the queue carries the load: no rate term, no margin
    else:
        rate = est.sustained_upper if cautious else est.sustained_rate
        load = rate * est.task_seconds  # busy slots at the sustained arrival rate
        slots = load + policy.headroom * math.sqrt(load) + drain
    wanted = math.ceil(slots / policy.per_replica_concurrency - 1e-9)
    # Work in hand (running or waiting) always has at least one replica.
    return max(wanted, 1 if latest.backlog > 0 else 0)


def recommend(policy: PoolPolicy, observations: Sequence[Observation]) -> tuple[int, int, Estimate]:
    """(replicas wanted now, replicas a scale-down must keep, the estimates behind them)."""
    est = estimate(policy, observations)
    latest = observations[-1]
    wanted = wanted_replicas(policy, latest, est)
    return wanted, max(wanted, wanted_replicas(policy, latest, est, cautious=True)), est


def decide(
    policy: PoolPolicy,
    observations: Sequence[Observation],
    current: int,
    recent: Sequence[tuple[float, int]],
    last_scale_down: float | None = None,
    hold_seconds: float | None = None,
    last_scale_up: float | None = None,
) -> Decision:
    """The replica count to set now.

    `recent` holds (time, recommended) pairs from earlier polls; those inside the
    stabilization window hold scale-down back (the highest one wins), and a scale-up is
    always one of them, so no scale-down comes sooner than a window after it.
    `last_scale_down` (the time of the last one) holds the opposite reversal back: inside
    the window after a scale-down, replicas go up again only when the current ones could
    not start the waiting messages within the target drain time. `hold_seconds` replaces
    the stabilization window when next_hold() has lengthened it. `last_scale_up` (the time
    of the last one) keeps a wait-targeted pool's pods added for a queue (grown_within).
    """
    if not observations:
        return Decision(current, current, "no observations yet", 0.0, 0.0, 0.0)
    latest = observations[-1]
    now = latest.time
    wanted, keep, est = recommend(policy, observations)
    window = policy.hold_seconds if hold_seconds is None else hold_seconds
    # Said after every reason when the rule below resized the pool (its log line and
    # events tell why the drain target and the window were not the spec's).
    rule = ""
    # Recurring bursts (spiky traffic): every burst scaled up to drain within the drain
    # target, and every scale-down between two bursts, is a direction change each way when
    # the next burst comes. KEDA merges bursts by holding its pods through its 300 s window;
    # holding ours (more pods, for the shorter wait) that long cost more pod time than
    # KEDA's, and any shorter hold flipped more often (the lengthened window of next_hold
    # held 20 pods up to 720 s). So with bursts that recur, each burst gets the pods that
    # drain it in burst_drain_factor x the target (still waiting less than under KEDA,
    # which ramps up x2 per 15 s sync) and they are held recurring_hold_seconds, through
    # most gaps: fewer direction changes than KEDA on fewer replica-seconds (docs/
    # benchmarks.md, Autoscaler simulation). A single burst, a ramp or a wave is untouched.
    if (
        policy.target_wait_seconds == 0
        and policy.recurring_hold_seconds > 0
        and bursts_recur(policy, observations)
    ):
        policy = dataclasses.replace(
            policy, target_drain_seconds=policy.target_drain_seconds * policy.burst_drain_factor
        )
        wanted, keep, est = recommend(policy, observations)
        window = policy.recurring_hold_seconds
        rule = " (bursts recur)"
    service = policy.per_replica_concurrency / est.task_seconds

    def decision(replicas: int, reason: str) -> Decision:
        return Decision(
            replicas,
            keep,
            reason + rule,
            est.arrival_rate,
            est.completion_rate,
            service,
            est.task_seconds,
        )

    clamped = policy.clamp(wanted)
    # Outside [min, ceiling] the count is pulled back at once, whatever the band says.
    if current > policy.ceiling:
        return decision(policy.ceiling, "scale down: above the pool's ceiling")
    if current < policy.min_replicas:
        return decision(clamped, "scale up: below minReplicas")
    band = max(1, math.floor(policy.tolerance * current))
    if clamped > current:
        if current == 0:
            return decision(clamped, "activate from zero")
        if clamped - current < band:
            return decision(current, "hold: increase inside the dead band")
        if last_scale_down is not None and now - last_scale_down < window:
            slots = current * policy.per_replica_concurrency
            if latest.pending * est.task_seconds <= slots * policy.reversal_seconds:
                return decision(current, "hold: too soon after a scale-down to reverse")
        return decision(clamped, "scale up: arrivals or waiting messages grew")
    if policy.target_wait_seconds > 0:
        if latest.pending > 0:
            return decision(current, "hold: messages are waiting, every pod will be busy")
        rising = rising_rate(policy, observations)
        grown = grown_within(policy, observations, est, last_scale_up, policy.scale_up_hold_waits)
        round_up = grown_within(
            policy, observations, est, last_scale_up, policy.grown_round_up_waits
        )
        held = policy.clamp(min(idle_pods_kept(policy, latest, est, rising, round_up), current))
        if held < current and (current - held >= band or held == policy.min_replicas):
            if window > policy.hold_seconds and after_burst(policy, observations, est):
                return decision(current, "hold: bursts came back, idle pods kept a while")
            if grown:
                return decision(current, "hold: pods added for a growing queue stay a while")
            return decision(held, "scale down: idle pods and nothing waiting")
        if round_up and held == current > idle_pods_kept(policy, latest, est, rising):
            return decision(current, "hold: a growing queue's load, rounded up, keeps its pods")
        return decision(current, "steady")
    held_back = [r for t, r in recent if now - t <= window]
    held = policy.clamp(min(max([policy.clamp(keep), *held_back]), current))
    if held < current and (current - held >= band or held == policy.min_replicas):
        return decision(held, "scale down: below current for the whole window")
    if clamped < current:
        return decision(current, "hold: waiting out the scale-down stabilization window")
    return decision(current, "steady")


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


def idle_pods_kept(
    policy: PoolPolicy,
    latest: Observation,
    est: Estimate,
    rising: float = 0.0,
    round_up: bool = False,
) -> int:
    """Replicas a wait-targeted pool keeps when nothing waits: idle pods go at once.

    While messages wait, every pod will be busy as soon as the queue reaches it, so the
    caller removes none. When none waits, the pool keeps its busy pods and the pods the
    arrival rate keeps busy all the time (rounded down: a pod busy only part of the time
    waits for its next message at full price), and no more; while arrivals rise (`rising`,
    the trend's rate now), the pods the higher of the two rates keeps busy, rounded up:
    the load is on its way to them. Rounded up too with `round_up`: shortly after a queue
    outgrew the pods, fewer pods than the load would be outgrown again (on slow ramps the
    trend test, counting a few arrivals a minute, missed the rise on one seed in five, and
    the pod taken away came back minutes later). No stabilization window: the queue, not a
    recent recommendation, says whether a pod has work.
    """
    conc = policy.per_replica_concurrency
    busy = math.ceil(latest.in_flight / conc)
    load = est.sustained_rate * est.task_seconds / conc
    if rising > 0:
        fed = math.ceil(max(load, rising * est.task_seconds / conc) - 1e-9)
    elif round_up:
        fed = math.ceil(load - 1e-9)
    else:
        fed = math.floor(load)
    return max(busy, fed)


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


MAX_HOLD_FACTOR = 4.0


def next_hold(
    policy: PoolPolicy, hold: float, now: float, last_scale_down: float | None, scaled_up: bool
) -> float:
    """The scale-down window after this poll.

    A scale-up that reverses a scale-down inside the window (only urgent work gets one)
    shows that scale-down was premature: traffic that comes back in bursts is held through
    twice as long next time, up to MAX_HOLD_FACTOR times the spec's window. A scale-up
    after a quiet window halves it again, down to the spec's.
    """
    base = policy.hold_seconds
    if not scaled_up:
        return hold
    if last_scale_down is not None and now - last_scale_down < hold:
        return min(max(hold, base) * 2, base * MAX_HOLD_FACTOR) if base > 0 else 0.0
    return max(base, hold / 2)
