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

A dependency's outage (storage, the jobs service, the model's service down) is not load:
workers wait it out in place, holding their messages, so tasks stop completing while
messages keep arriving, and the queue and the measured task time grow as if the pool were
too small. While at least OUTAGE_SHARE of the in-flight tasks are waiting one out (the
workers' heartbeats say so), no pod is added: every new pod's slots would wait on the same
dependency. Scale-down, activation from zero and minReplicas are unchanged, and normal
decisions resume at the first poll after the waits end.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bytereview_operator.estimates import Estimate, Observation, estimate
from bytereview_operator.pool_policy import PoolPolicy
from bytereview_operator.traffic import after_burst, bursts_recur, grown_within, rising_rate

# Scale-ups are held while at least this share of the in-flight tasks wait out an outage.
# Half: an outage of a dependency every task calls (storage, the jobs service, the model)
# soon has every slot waiting, so the share climbs well past half within a task time or two,
# while a few tasks waiting (one tenant's flaky bucket, one retry) leave most slots
# completing work, and a queue that grows then is load to scale for.
OUTAGE_SHARE = 0.5


def waiting_out_an_outage(latest: Observation) -> bool:
    """Whether at least OUTAGE_SHARE of the in-flight tasks wait out a dependency's outage."""
    return latest.in_flight > 0 and latest.waiting >= OUTAGE_SHARE * latest.in_flight


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
        if waiting_out_an_outage(latest):
            return decision(
                current,
                f"hold: {latest.waiting} tasks are waiting on a dependency (its outage or "
                "its quota); more pods would wait too",
            )
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
