"""The scaling policy: worked examples and properties that must hold for any input."""

from __future__ import annotations

import dataclasses
import heapq
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bytereview_operator.estimates import Observation, estimate, since_reset
from bytereview_operator.policy import (
    MAX_HOLD_FACTOR,
    Decision,
    decide,
    idle_pods_kept,
    next_hold,
    wanted_replicas,
)
from bytereview_operator.pool_policy import PoolPolicy
from bytereview_operator.reconcile import ScaleState
from bytereview_operator.traffic import after_burst, bursts_recur, rising_rate

POLICY = PoolPolicy(
    min_replicas=0,
    max_replicas=20,
    per_replica_concurrency=4,
    expected_task_seconds=2.0,
    target_drain_seconds=30.0,
    scale_down_stabilization_seconds=60.0,
    max_ack_pending=64,
)


def obs(
    t: float, pending: int, in_flight: int = 0, arrived: int = 0, completed: int = 0
) -> Observation:
    return Observation(
        time=t, pending=pending, in_flight=in_flight, arrived=arrived, completed=completed
    )


def steady(
    *, rate: float, task_seconds: float, busy: int, seconds: float, poll: float = 5.0
) -> list[Observation]:
    """A pool at a steady state: `rate` arrivals and completions per second, `busy` in flight."""
    return [
        obs(t, 0, busy, arrived=round(rate * t) + busy, completed=round(rate * t))
        for t in [i * poll for i in range(int(seconds / poll) + 1)]
    ]


def test_activation_from_zero_on_the_first_message() -> None:
    d = decide(POLICY, [obs(0, 0), obs(5, 1, arrived=1)], current=0, recent=[])
    assert d.replicas == 1
    assert d.reason == "activate from zero"


def test_a_burst_is_answered_at_the_next_poll() -> None:
    # 5,000 waiting: started within 30 s at the prior 2 s per task takes 334 slots, 84 replicas.
    d = decide(POLICY, [obs(0, 0), obs(5, 5000, arrived=5000)], current=1, recent=[])
    assert d.recommended == math.ceil(5000 * 2 / 30 / 4)
    assert d.replicas == POLICY.ceiling == 16  # MaxAckPending 64 / 4 per replica


def test_a_waiting_message_never_asks_for_more_than_its_own_slot() -> None:
    # 3 waiting 20-second tasks, drain target 1 s: three slots, not sixty.
    policy = PoolPolicy(expected_task_seconds=20, target_drain_seconds=1, max_replicas=50)
    assert wanted_replicas(policy, obs(5, 3, arrived=3), estimate(policy, [obs(5, 3)])) == 3


def test_steady_arrivals_follow_littles_law_with_a_square_root_margin() -> None:
    # 6 arrivals/s of 2 s tasks keep 12 slots busy; the margin adds 1.5 x sqrt(12): 5 replicas.
    history = steady(rate=6, task_seconds=2, busy=12, seconds=600)
    d = decide(POLICY, history, current=7, recent=[])
    assert math.isclose(d.arrival_rate, 6.0, rel_tol=0.01)
    assert math.isclose(d.task_seconds, 2.0, rel_tol=0.01)
    assert math.isclose(d.service_rate, 4 / d.task_seconds)
    load = d.arrival_rate * d.task_seconds
    assert d.recommended == math.ceil((load + POLICY.headroom * math.sqrt(load)) / 4) == 5
    assert d.replicas == 5  # nothing recent holds it
    held = decide(POLICY, history, current=7, recent=[(history[-1].time - 10, 7)])
    assert held.replicas == 7  # 7 recommended 10 s ago: the window holds the drop back


def test_a_scale_down_must_still_cover_the_noise_in_the_arrival_rate() -> None:
    # One-at-a-time replicas, 10 s tasks, 0.5 arrivals/s: 5 busy slots at the point estimate;
    # thirty-odd arrivals know the rate to about 1/sqrt(n), so a scale-down keeps 6.
    policy = PoolPolicy(
        max_replicas=50,
        expected_task_seconds=10,
        headroom=0,
        scale_down_stabilization_seconds=60,
        rate_events=30,
    )
    history = steady(rate=0.5, task_seconds=10, busy=5, seconds=600, poll=10)
    est = estimate(policy, history)
    assert math.isclose(est.sustained_rate * est.task_seconds, 5.0, rel_tol=0.02)
    assert est.sustained_upper > est.sustained_rate
    assert wanted_replicas(policy, history[-1], est) == 5
    assert wanted_replicas(policy, history[-1], est, cautious=True) == 6
    assert decide(policy, history, current=6, recent=[]).replicas == 6
    assert decide(policy, history, current=8, recent=[]).replicas == 6
    assert decide(policy, history, current=4, recent=[]).replicas == 5  # up on the point


def test_the_task_time_of_a_slow_pool_is_measured_over_many_polls() -> None:
    # Five one-at-a-time replicas busy on 20 s tasks: a 5 s window sees 0 or 1 completion
    # (a rate of 0 or 0.2/s against a true 0.25/s); ten minutes of them read 20 s.
    rng = random.Random(1)
    history: list[Observation] = []
    completed, t = 0, 0.0
    finish = [rng.uniform(0, 20) for _ in range(5)]  # one running task per replica
    heapq.heapify(finish)
    while t <= 600:
        while finish[0] <= t:
            completed += 1
            heapq.heapreplace(finish, finish[0] + rng.uniform(15, 25))
        history.append(obs(t, 10, 5, arrived=completed + 15, completed=completed))
        t += 5
    est = estimate(PoolPolicy(expected_task_seconds=60), history)
    assert 17 <= est.task_seconds <= 23
    one_window = estimate(PoolPolicy(expected_task_seconds=60), history[-2:])
    assert one_window.task_seconds > 40  # mostly the prior: one window says little


def test_an_outage_waited_out_is_not_task_time() -> None:
    """Two-second tasks, then five minutes in which every slot waits out an outage, then
    work again: the task time stays about two seconds (counting the waits read 11 s, and
    the pool overshot to its ceiling once the outage was over)."""
    history = steady(rate=2.0, task_seconds=2.0, busy=4, seconds=120)
    arrived, completed = history[-1].arrived, history[-1].completed
    for t in range(125, 425, 5):  # the outage: arrivals queue, nothing completes
        arrived += 10
        history.append(
            Observation(
                time=t,
                pending=arrived - completed - 8,
                in_flight=8,
                arrived=arrived,
                completed=completed,
                waiting=8,
            )
        )
    for t in range(425, 445, 5):  # over: the eight finish, and more with them
        completed += 10
        history.append(obs(t, arrived - completed - 8, 8, arrived=arrived, completed=completed))
    assert 1.0 <= estimate(POLICY, history).task_seconds <= 3.0


def test_running_tasks_are_not_backlog_still_to_drain() -> None:
    # 10 one-at-a-time replicas all running, nothing waiting, nothing arriving: work in hand
    # keeps one replica; the running tasks do not ask for ten more drains' worth.
    policy = PoolPolicy(expected_task_seconds=20, target_drain_seconds=30, max_replicas=50)
    history = [obs(0, 0, 10, arrived=10), obs(5, 0, 10, arrived=10)]
    assert decide(policy, history, current=10, recent=[]).recommended == 1


def test_a_burst_is_not_counted_again_as_an_arrival_rate() -> None:
    # 2/s, and 1,000 at once 30 s ago: the load is 2/s; the burst is the drain term's.
    history = [obs(0, 0)]
    arrived = 0
    for t in range(5, 305, 5):
        arrived += 1000 if t == 270 else 10
        history.append(obs(t, 0, 4, arrived=arrived, completed=arrived - 4))
    est = estimate(POLICY, history)
    assert est.arrival_rate > 15  # what arrived over the last minute, burst included
    assert math.isclose(est.sustained_rate, 2.0, rel_tol=0.01)


# A slow one-at-a-time pool as the chart ships ingest: ~24 s archives, a 200 s wait target.
INGEST = PoolPolicy(
    min_replicas=1,
    max_replicas=10,
    expected_task_seconds=24,
    target_drain_seconds=120,
    scale_down_stabilization_seconds=180,
    max_ack_pending=256,
    target_wait_seconds=200,
)


def test_a_wait_targeted_pool_lets_the_queue_carry_steady_load() -> None:
    # 0.15 archives/s keep 4 pods busy (26.7 s each); 6 more archives wait (6 x 26.7 / 4 =
    # 40 s before the last starts). Sized by the arrival rate the pool adds a margin and a
    # drain, 4 + 1.5 sqrt(4) + 6 x 26.7 / 120 -> 9 pods, more than half of them idle once
    # the queue is gone. With the wait target the queue is the margin: the 4 stay 4.
    history = steady(rate=0.15, task_seconds=24, busy=4, seconds=600)
    last = history[-1]
    history[-1] = obs(last.time, 6, 4, last.arrived + 6, last.completed)
    by_rate = dataclasses.replace(INGEST, target_wait_seconds=0)
    assert decide(by_rate, history, current=4, recent=[]).replicas == 9
    d = decide(INGEST, history, current=4, recent=[])
    assert (d.recommended, d.replicas) == (1, 4)
    # Nor does a wait-targeted pool shed a pod while archives wait for one.
    assert "waiting" in decide(INGEST, history, current=6, recent=[]).reason
    assert decide(INGEST, history, current=6, recent=[]).replicas == 6


def test_a_wait_targeted_pool_adds_pods_when_the_queue_would_wait_too_long() -> None:
    # 50 archives waiting at ~26 s each (the prior, with the running one half done): 1,300
    # slot-seconds to start within 200 s. No arrival rate is added on top.
    history = [obs(0, 0, 1, arrived=1), obs(5, 50, 1, arrived=51)]
    d = decide(INGEST, history, current=1, recent=[])
    assert d.replicas == math.ceil(50 * d.task_seconds / 200) == 7
    assert "scale up" in d.reason


def test_idle_pods_of_a_wait_targeted_pool_go_as_soon_as_nothing_waits() -> None:
    # A burst has just drained: 10 pods, 3 still busy, nothing waiting or arriving. The
    # rate-sized pool waits out its stabilization window with 7 idle pods (180 s x 7 = 1,260
    # pod-seconds per burst); the wait-targeted one keeps the 3 busy pods.
    history = [obs(t, 0, 3, arrived=100, completed=97) for t in (600.0, 605.0)]
    recent = [(500.0, 10), (595.0, 10)]
    by_rate = dataclasses.replace(INGEST, target_wait_seconds=0)
    assert decide(by_rate, history, current=10, recent=recent).replicas == 10
    d = decide(INGEST, history, current=10, recent=recent)
    assert d.replicas == 3
    assert d.reason == "scale down: idle pods and nothing waiting"
    # Once the last task is done, down to minReplicas.
    done = [obs(t, 0, 0, arrived=100, completed=100) for t in (700.0, 705.0)]
    assert decide(INGEST, done, current=3, recent=recent).replicas == INGEST.min_replicas


def test_a_wait_targeted_pool_keeps_the_pods_its_arrivals_keep_busy() -> None:
    # 0.15/s of 24 s archives: 3.6 busy pods on average. At this poll the queue is empty
    # and only one archive runs, but three pods' worth of arrivals is coming: they stay.
    history = steady(rate=0.15, task_seconds=24, busy=4, seconds=600)
    last = history[-1]
    history[-1] = obs(last.time, 0, 1, last.arrived, last.completed + 3)
    d = decide(INGEST, history, current=6, recent=[])
    assert 3 <= d.arrival_rate * d.task_seconds < 4
    assert d.replicas == 3


def test_a_wait_targeted_pool_reverses_a_scale_down_only_for_a_long_wait() -> None:
    # Two pods busy at 0.1/s. Ten minutes after a scale-down (past the 180 s stabilization
    # window, inside the wait-targeted hold of 6 x 200 s) archives queue up. 20 of them
    # want a third pod (20 x ~20 s / 200 s), but two pods start them all within 1.5 x the
    # target: noise in the queue, not a reason to reverse. 30 would wait too long: up.
    def reading(waiting: int) -> list[Observation]:
        history = steady(rate=0.1, task_seconds=20, busy=2, seconds=1800)
        last = history[-1]
        return [*history[:-1], obs(last.time, waiting, 2, last.arrived + waiting, last.completed)]

    now = reading(0)[-1].time
    assert INGEST.hold_seconds == 1200
    held = decide(INGEST, reading(20), current=2, recent=[], last_scale_down=now - 600)
    assert held.recommended == 3
    assert 400 < 20 * held.task_seconds <= 2 * 1.5 * 200
    assert (held.replicas, held.reason) == (2, "hold: too soon after a scale-down to reverse")
    # Without a recent scale-down, or once the hold is over, the same queue adds the pod.
    assert decide(INGEST, reading(20), current=2, recent=[]).replicas == 3
    later = decide(INGEST, reading(20), current=2, recent=[], last_scale_down=now - 1300)
    assert later.replicas == 3
    urgent = decide(INGEST, reading(30), current=2, recent=[], last_scale_down=now - 600)
    assert urgent.replicas == math.ceil(30 * urgent.task_seconds / 200) == 4
    # A pool sized by the arrival rate keeps its own window and drain target.
    by_rate = dataclasses.replace(INGEST, target_wait_seconds=0)
    assert by_rate.hold_seconds == 180
    assert by_rate.reversal_seconds == 120


def test_a_premature_scale_down_doubles_the_hold_of_a_wait_targeted_pool() -> None:
    state = ScaleState()
    # A burst drained: idle pods go at once (no window), down to minReplicas.
    idle = state.decide(INGEST, obs(0, 0, 0, arrived=60, completed=60), 5)
    assert idle.replicas == 1
    # 100 s later 60 archives arrive: one pod would start the last after ~1,500 s, far past
    # 1.5 x the target, so it goes up, and the next hold is twice the six targets.
    up = state.decide(INGEST, obs(100, 60, 0, arrived=120, completed=60), 1)
    assert up.replicas > 1
    assert state.hold == 2 * 6 * 200


def arrivals_history(arrived_at: list[int], busy: int = 1) -> list[Observation]:
    """Polls every 5 s with the given cumulative arrivals; every archive but `busy` done."""
    return [
        obs(i * 5.0, 0, min(busy, n), arrived=n, completed=n - min(busy, n))
        for i, n in enumerate(arrived_at)
    ]


def test_a_wait_targeted_pool_keeps_a_pod_while_arrivals_rise() -> None:
    # Arrivals rise linearly from 0 to 0.1/s over ten minutes (30 archives of ~18 s): the
    # rate over the last 30 arrivals reaches back to the start, 0.05/s, under one pod, so
    # the second pod would go the moment the queue empties, to come back minutes later.
    # The trend says ~0.1/s now (1.7 pods): two pods stay.
    rising = arrivals_history([round(0.1 * (i * 5) ** 2 / 1200) for i in range(121)])
    est = estimate(INGEST, rising)
    assert idle_pods_kept(INGEST, rising[-1], est) == 1  # the lagging rate alone
    assert 0.09 < rising_rate(INGEST, rising) < 0.11
    d = decide(INGEST, rising, current=3, recent=[])
    assert d.replicas == math.ceil(rising_rate(INGEST, rising) * d.task_seconds) == 2
    # The same 30 archives at a steady rate are no trend: one pod keeps up with them.
    flat = arrivals_history([round(0.05 * i * 5) for i in range(121)])
    assert rising_rate(INGEST, flat) == 0
    assert decide(INGEST, flat, current=3, recent=[]).replicas == 1
    # Nor is a burst: 20 archives in one poll on the steady traffic.
    burst = arrivals_history([round(0.05 * i * 5) + (20 if i >= 110 else 0) for i in range(121)])
    assert rising_rate(INGEST, burst) == 0


def test_a_rise_of_one_standard_error_is_a_trend() -> None:
    # 10 archives in the older half of the service window, 15 in the newer (one every 30 s,
    # then every 20 s): trimmed of their two largest polls, 8.3 and 14.5, a rise of 6.2
    # against a standard error of 4.8. At two standard errors that was noise, and the pod
    # the queue had added went when it emptied (on slow ramps it came back minutes later).
    # The trend says 0.053/s now, 1.3 pods of ~24 s archives: two stay.
    steps = [int(i % 6 == 0) for i in range(60)] + [int(i % 4 == 0) for i in range(60)]
    history = arrivals_history([sum(steps[:i]) for i in range(121)])
    assert 0.05 < rising_rate(INGEST, history) < 0.055
    d = decide(INGEST, history, current=3, recent=[])
    assert d.replicas == math.ceil(rising_rate(INGEST, history) * d.task_seconds) == 2
    # The same arrivals in the other order fall: no trend, one busy pod stays.
    falling = steps[60:] + steps[:60]
    history = arrivals_history([sum(falling[:i]) for i in range(121)])
    assert rising_rate(INGEST, history) == 0
    assert decide(INGEST, history, current=3, recent=[]).replicas == 1


def test_pods_added_for_a_growing_queue_stay_a_wait_target() -> None:
    # Steady 0.03/s of ~24 s archives (0.7 pods' load): the queue has just emptied, one
    # archive runs, a second pod was added 100 s ago for the queue. Removing it at once
    # took it away just before a rising load reached it; it stays one wait target (200 s).
    history = steady(rate=0.03, task_seconds=24, busy=1, seconds=900)
    now = history[-1].time
    assert decide(INGEST, history, current=2, recent=[]).replicas == 1
    held = decide(INGEST, history, current=2, recent=[], last_scale_up=now - 100)
    assert (held.replicas, held.reason) == (
        2,
        "hold: pods added for a growing queue stay a while",
    )
    assert decide(INGEST, history, current=2, recent=[], last_scale_up=now - 200).replicas == 1
    # A burst's pods are not held by it (after_burst decides for them): 40 archives queued
    # within the window, 200 s ago (three times the steady queue, ~0.035/s x 200 s, is ~21).
    burst = [
        dataclasses.replace(o, pending=40) if now - 205 <= o.time <= now - 200 else o
        for o in history
    ]
    assert decide(INGEST, burst, current=2, recent=[], last_scale_up=now - 100).replicas == 1
    # ScaleState remembers the last scale-up and passes it on.
    state = ScaleState()
    state.decide(INGEST, obs(0, 0, 0), 1)
    assert state.decide(INGEST, obs(5, 30, 0, arrived=30), 1).replicas > 1
    assert state.last_scale_up == 5


def test_the_load_of_a_growing_queue_is_rounded_up_a_while() -> None:
    # 0.055/s of ~24 s archives: 1.3 pods' load. A second pod was added for a queue that
    # grew without a burst; the queue has just emptied and neither pod is busy. Rounded
    # down, one pod would carry 1.3 pods of load (its queue grows again, and the pod comes
    # back minutes later); for 2.5 wait targets (500 s) after the scale-up, two stay.
    history = [
        obs(i * 5.0, 0, i % 2 + 1, arrived=round(0.055 * i * 5) + 2, completed=round(0.055 * i * 5))
        for i in range(180)
    ]
    now = history[-1].time
    history.append(obs(now + 5, 0, 0, arrived=history[-1].arrived, completed=history[-1].arrived))
    now += 5
    d = decide(INGEST, history, current=2, recent=[])
    assert 1 < d.arrival_rate * d.task_seconds < 2
    assert d.replicas == 1  # no scale-up to round for
    held = decide(INGEST, history, current=2, recent=[], last_scale_up=now - 300)
    assert (held.replicas, held.reason) == (
        2,
        "hold: a growing queue's load, rounded up, keeps its pods",
    )
    # More pods than the load rounded up still go: the third is idle whatever the rounding.
    assert decide(INGEST, history, current=3, recent=[], last_scale_up=now - 300).replicas == 2
    assert decide(INGEST, history, current=2, recent=[], last_scale_up=now - 500).replicas == 1
    # A burst's scale-up is not a growing load: 40 archives queued 200 s ago.
    burst = [
        dataclasses.replace(o, pending=40) if now - 205 <= o.time <= now - 200 else o
        for o in history
    ]
    assert decide(INGEST, burst, current=2, recent=[], last_scale_up=now - 300).replicas == 1


def test_idle_pods_after_a_burst_stay_a_while_once_bursts_have_come_back() -> None:
    # A burst of 60 archives on 0.01/s drained under a minute ago with 6 pods; one still runs.
    def reading(i: int) -> Observation:
        arrived = round(0.01 * i * 5) + 1 + (60 if i >= 100 else 0)
        waiting = 60 - 6 * (i - 100) if 100 <= i < 110 else 0
        return obs(i * 5.0, waiting, 1, arrived=arrived, completed=arrived - waiting - 1)

    history = [reading(i) for i in range(121)]
    est = estimate(INGEST, history)
    assert after_burst(INGEST, history, est)
    # Without a premature scale-down, idle pods go at once.
    assert decide(INGEST, history, current=6, recent=[]).replicas == 1
    # Once a scale-down proved premature (the hold doubled), they stay 0.75 x 200 s.
    held = decide(INGEST, history, current=6, recent=[], hold_seconds=2 * INGEST.hold_seconds)
    assert (held.replicas, held.reason) == (6, "hold: bursts came back, idle pods kept a while")
    last = history[-1]
    later = [*history, *(dataclasses.replace(last, time=last.time + t) for t in (50, 100))]
    assert not after_burst(INGEST, later, estimate(INGEST, later))
    assert decide(INGEST, later, current=6, recent=[], hold_seconds=2400).replicas == 1
    # A queue at its steady length (arrival rate x target) is not a burst.
    steady_queue = [dataclasses.replace(o, pending=min(o.pending, 1)) for o in history]
    assert not after_burst(INGEST, steady_queue, estimate(INGEST, steady_queue))


def test_a_recreated_stream_starts_the_counts_again() -> None:
    history = [obs(0, 0, arrived=900, completed=900), obs(5, 0, arrived=10, completed=10)]
    assert since_reset(history) == history[1:]
    assert estimate(POLICY, history).arrival_rate == 0.0


def test_scale_down_waits_out_the_window_then_goes_to_min() -> None:
    idle = [obs(100, 0, arrived=50, completed=50), obs(105, 0, arrived=50, completed=50)]
    held = decide(POLICY, idle, current=5, recent=[(40, 5), (100, 3)])
    assert held.replicas == 3
    assert "scale down" in held.reason
    still = decide(POLICY, idle, current=5, recent=[(90, 5)])
    assert still.replicas == 5
    assert "hold" in still.reason
    later = [obs(300, 0, arrived=50, completed=50), obs(305, 0, arrived=50, completed=50)]
    assert decide(POLICY, later, current=5, recent=[(90, 5)]).replicas == 0


def test_a_change_inside_the_dead_band_is_not_made() -> None:
    policy = PoolPolicy(
        max_replicas=100,
        per_replica_concurrency=1,
        expected_task_seconds=1,
        target_drain_seconds=1,
        max_ack_pending=100,
    )
    history = [obs(0, 0), obs(5, 31, arrived=31)]
    # 31 waiting one-second tasks want 31 replicas: +1 on 30 is inside 10%.
    assert decide(policy, history, current=30, recent=[]).replicas == 30
    assert decide(policy, history, current=20, recent=[]).replicas == 31
    # Down by one from 32 is inside the band too (10% of 32 is 3).
    assert decide(policy, history, current=32, recent=[]).replicas == 32


def test_no_reversal_soon_after_a_scale_down_unless_work_would_wait_too_long() -> None:
    def reading(waiting: int) -> list[Observation]:
        history = steady(rate=4, task_seconds=2, busy=8, seconds=300)
        last = history[-1]
        return [*history[:-1], obs(last.time, waiting, 8, last.arrived + waiting, last.completed)]

    now = reading(0)[-1].time
    # 30 waiting two-second tasks on top of 8 busy slots want a fourth replica, but the
    # last scale-down was 20 s ago and three replicas start them well within 30 s.
    d = decide(POLICY, reading(30), current=3, recent=[], last_scale_down=now - 20)
    assert d.recommended == 4
    assert d.replicas == 3
    assert "too soon" in d.reason
    # Once the window has passed, the same reading scales up.
    assert (
        decide(POLICY, reading(30), current=3, recent=[], last_scale_down=now - 100).replicas == 4
    )
    # Work that three replicas could not start within the 30 s target goes up at once.
    urgent = decide(POLICY, reading(200), current=3, recent=[], last_scale_down=now - 20)
    assert urgent.replicas > 3


def outage(waiting: int, *, seconds: float = 120) -> list[Observation]:
    """Three replicas (12 slots) busy at 2 arrivals a second of 2 s tasks, then a dependency
    down for `seconds`: nothing completes, arrivals go on, 12 tasks stay in flight, `waiting`
    of them (the heartbeats say) waiting the outage out."""
    history = steady(rate=2, task_seconds=2, busy=12, seconds=600)
    start = history[-1]
    for step in range(1, int(seconds / 5) + 1):
        t = start.time + 5 * step
        arrived = start.arrived + 10 * step
        history.append(
            Observation(t, arrived - start.arrived, 12, arrived, start.completed, waiting)
        )
    return history


def test_no_pods_are_added_while_most_tasks_wait_out_an_outage() -> None:
    """A growing queue and nothing completing: an outage looks like a pool too small. More
    pods would wait on the same dependency, so none is added while most in-flight tasks wait."""
    held = decide(POLICY, outage(waiting=12), current=3, recent=[])
    assert held.recommended > 3  # the queue alone asks for more...
    assert held.replicas == 3  # ...and is refused
    assert held.reason == (
        "hold: 12 tasks are waiting on a dependency (its outage or its quota); more pods would wait too"
    )
    assert decide(POLICY, outage(waiting=6), current=3, recent=[]).replicas == 3  # half
    # Without the heartbeats' word (or once the outage ended), the same queue scales up.
    for waiting in (0, 5):
        up = decide(POLICY, outage(waiting=waiting), current=3, recent=[])
        assert up.replicas > 3
        assert up.reason == "scale up: arrivals or waiting messages grew"


def test_an_outage_does_not_hold_minimum_replicas_back() -> None:
    at_least_five = dataclasses.replace(POLICY, min_replicas=5)
    d = decide(at_least_five, outage(waiting=12), current=3, recent=[])
    assert d.replicas >= 5
    assert d.reason == "scale up: below minReplicas"


def test_a_premature_scale_down_lengthens_the_next_hold() -> None:
    base = POLICY.scale_down_stabilization_seconds  # 60
    # Up 30 s after a scale-down (urgent work came back): hold twice as long next time.
    assert next_hold(POLICY, base, 100, 70, scaled_up=True) == 2 * base
    assert next_hold(POLICY, 2 * base, 300, 250, scaled_up=True) == 4 * base
    assert next_hold(POLICY, 4 * base, 500, 450, scaled_up=True) == MAX_HOLD_FACTOR * base
    # Polls without a scale-up change nothing; one after a quiet window halves it back.
    assert next_hold(POLICY, 4 * base, 500, 450, scaled_up=False) == 4 * base
    assert next_hold(POLICY, 4 * base, 2000, 500, scaled_up=True) == 2 * base
    assert next_hold(POLICY, base, 2000, None, scaled_up=True) == base
    # The longer hold is the window decide() uses.
    idle = [obs(200, 0, arrived=50, completed=50), obs(205, 0, arrived=50, completed=50)]
    assert decide(POLICY, idle, current=5, recent=[(100, 5)]).replicas == 0
    held = decide(POLICY, idle, current=5, recent=[(100, 5)], hold_seconds=2 * base)
    assert held.replicas == 5


SPIKY = dataclasses.replace(POLICY, max_replicas=50, max_ack_pending=1000)


def spiky(until: float, bursts: list[float], size: int = 400) -> list[Observation]:
    """2 arrivals a second, 4 in flight, and `size` more at each burst; the queue holds a
    burst only at the poll it landed on."""
    history = []
    for t in [i * 5.0 for i in range(int(until / 5) + 1)]:
        arrived = round(2 * t) + 4 + size * sum(1 for b in bursts if b <= t)
        pending = size if t in bursts else 0
        history.append(obs(t, pending, 4, arrived=arrived, completed=arrived - 4 - pending))
    return history


def test_bursts_recur_counts_jumps_not_levels() -> None:
    assert bursts_recur(SPIKY, spiky(600, [100, 400]))
    assert not bursts_recur(SPIKY, spiky(600, [400]))  # one burst is not spiky traffic
    # Older than burst_memory_seconds: forgotten.
    assert not bursts_recur(SPIKY, spiky(1700, [100, 400]))
    # A ramp (arrivals per poll 1, 2, 3, ... 100) rises, it does not jump.
    ramp, arrived = [], 0
    for i in range(100):
        arrived += i
        ramp.append(obs(5.0 * i, 0, 0, arrived=arrived, completed=arrived))
    assert not bursts_recur(SPIKY, ramp)
    # Traffic that steps up and stays is a new level, however often it does.
    step, arrived = [], 0
    for i in range(200):
        arrived += 10 if i % 60 < 30 else 500
        step.append(obs(5.0 * i, 0, 0, arrived=arrived, completed=arrived))
    assert not bursts_recur(SPIKY, step)


def test_one_upload_with_a_stall_in_it_is_one_burst() -> None:
    """Polls every second (the operator's tests poll so): 2,000 messages published over
    three polls with a quiet one in the middle were two bursts, so a single upload held its
    pods recurring_hold_seconds. Big polls less than burst_merge_seconds apart are one."""
    fast = dataclasses.replace(SPIKY, max_replicas=4)
    history, arrived = [], 0
    for t in range(200):
        arrived += {120: 900, 122: 1100}.get(t, 0)
        history.append(obs(float(t), 0, 0, arrived=arrived, completed=arrived))
    assert not bursts_recur(fast, history)
    # A second burst well after the first: recurring.
    arrived += 1000
    history.append(obs(200.0, 0, 0, arrived=arrived, completed=arrived))
    assert bursts_recur(fast, history)


def test_recurring_bursts_get_fewer_pods_held_longer() -> None:
    off = dataclasses.replace(SPIKY, recurring_hold_seconds=0.0)
    slower = dataclasses.replace(off, target_drain_seconds=2 * SPIKY.target_drain_seconds)
    # A burst after another: the pods that drain it in twice the target (half of them).
    second = spiky(400, [100, 400])
    ours = decide(SPIKY, second, current=2, recent=[])
    assert ours.replicas == decide(slower, second, current=2, recent=[]).replicas
    # The reason says the rule resized it (the operator logs it with each scaling).
    assert ours.reason == "scale up: arrivals or waiting messages grew (bursts recur)"
    assert decide(off, second, current=2, recent=[]).replicas > ours.replicas
    # A first burst: the drain target as it is.
    first = spiky(400, [400])
    alone = decide(SPIKY, first, current=2, recent=[])
    assert alone.replicas == decide(off, first, current=2, recent=[]).replicas
    assert "bursts recur" not in alone.reason
    # Its pods stay recurring_hold_seconds after the burst, not the spec's 60 s window.
    later = spiky(700, [100, 400])
    recent = [(400.0, ours.replicas)]
    assert decide(off, later, current=ours.replicas, recent=recent).replicas < ours.replicas
    assert decide(SPIKY, later, current=ours.replicas, recent=recent).replicas == ours.replicas
    gone = spiky(900, [100, 400])
    assert decide(SPIKY, gone, current=ours.replicas, recent=recent).replicas < ours.replicas


def test_scale_state_lengthens_its_hold_after_a_premature_scale_down() -> None:
    policy = dataclasses.replace(POLICY, min_replicas=1)
    state = ScaleState()
    # Idle at 3 replicas until the window lets them go down to 1...
    current, t = 3, 0.0
    while current == 3:
        current = state.decide(policy, obs(t, 0, 0, arrived=40, completed=40), current).replicas
        t += 5
    assert current == 1
    assert state.last_scale_down == t - 5
    # ...and 10 s later a burst one replica cannot start in time: up, and a longer hold.
    up = state.decide(policy, obs(t + 5, 400, 0, arrived=440, completed=40), current)
    assert up.replicas > 1
    assert state.hold == 2 * policy.scale_down_stabilization_seconds


def test_min_replicas_is_kept_and_no_observations_changes_nothing() -> None:
    policy = PoolPolicy(min_replicas=2, max_replicas=5)
    assert decide(policy, [obs(0, 0), obs(5, 0)], current=2, recent=[]).replicas == 2
    assert decide(policy, [obs(0, 0), obs(5, 0)], current=0, recent=[]).replicas == 2
    assert decide(policy, [obs(0, 0), obs(5, 0)], current=9, recent=[]).replicas == 5
    assert decide(policy, [], current=3, recent=[]) == Decision(
        3, 3, "no observations yet", 0.0, 0.0, 0.0
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_replicas": -1},
        {"min_replicas": 5, "max_replicas": 2},
        {"max_replicas": 0},
        {"per_replica_concurrency": 0},
        {"expected_task_seconds": 0},
        {"target_drain_seconds": 0},
        {"max_ack_pending": 0},
        {"tolerance": 1.0},
        {"headroom": -1},
        {"prior_tasks": 0},
        {"rate_window_seconds": 0},
        {"service_window_seconds": 0},
        {"target_wait_seconds": -1},
        {"reversal_wait_targets": -1},
        {"reversal_wait_factor": 0.5},
        {"burst_hold_waits": -1},
        {"scale_up_hold_waits": -1},
        {"burst_queue_factor": 0.5},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"need|>="):
        PoolPolicy(**kwargs)  # type: ignore[arg-type]


policies = st.builds(
    PoolPolicy,
    min_replicas=st.integers(0, 3),
    max_replicas=st.integers(3, 50),
    per_replica_concurrency=st.integers(1, 32),
    expected_task_seconds=st.floats(0.1, 600),
    target_drain_seconds=st.floats(1, 3600),
    scale_down_stabilization_seconds=st.floats(0, 900),
    max_ack_pending=st.integers(1, 10_000),
    tolerance=st.floats(0, 0.5),
    headroom=st.floats(0, 3),
    target_wait_seconds=st.one_of(st.just(0.0), st.floats(1, 3600)),
)


@st.composite
def histories(draw: st.DrawFn) -> list[Observation]:
    """Consistent readings: counters never go backwards, in flight never exceeds arrivals."""
    t, arrived, completed = draw(st.floats(0, 1000)), 0, 0
    out = []
    for _ in range(draw(st.integers(1, 8))):
        t += draw(st.floats(0.5, 120))
        arrived += draw(st.integers(0, 5000))
        completed = draw(st.integers(completed, arrived))
        in_flight = draw(st.integers(0, arrived - completed))
        out.append(obs(t, arrived - completed - in_flight, in_flight, arrived, completed))
    return out


@settings(max_examples=400, deadline=None)
@given(
    policies,
    histories(),
    st.integers(0, 60),
    st.lists(st.tuples(st.floats(0, 10_000), st.integers(0, 60)), max_size=5),
    st.one_of(st.none(), st.floats(0, 10_000)),
)
def test_properties(
    policy: PoolPolicy,
    history: list[Observation],
    current: int,
    recent: list[tuple[float, int]],
    last_down: float | None,
) -> None:
    d = decide(policy, history, current, recent, last_down)
    latest = history[-1]
    # Always within bounds (a current count outside them is pulled back in).
    assert policy.min_replicas <= d.replicas <= policy.ceiling
    # Work waiting or running means at least one replica.
    if latest.backlog > 0:
        assert d.replicas >= 1
    assert d.task_seconds > 0
    # A wait-targeted pool sheds only idle pods, and none while messages wait.
    if policy.target_wait_seconds > 0 and d.replicas < current <= policy.ceiling:
        assert latest.pending == 0
        assert d.replicas * policy.per_replica_concurrency >= latest.in_flight
    # Scale-down is never faster than the window allows: never below a recent recommendation.
    elif d.replicas < current <= policy.ceiling:
        window = [
            r for t, r in recent if latest.time - t <= policy.scale_down_stabilization_seconds
        ]
        assert d.replicas >= min(max([0, *window]), policy.ceiling, current)
    # A reversal soon after a scale-down only for work the current replicas cannot start in time.
    if (
        last_down is not None
        and 0 <= latest.time - last_down < policy.scale_down_stabilization_seconds
        and policy.min_replicas <= current < d.replicas
        and current > 0
    ):
        slots = current * policy.per_replica_concurrency
        assert latest.pending * d.task_seconds > slots * policy.queue_seconds
    # Changes outside the bounds' pull are at least the dead band.
    if policy.min_replicas <= current <= policy.ceiling and d.replicas != current and current:
        band = max(1, math.floor(policy.tolerance * current))
        assert abs(d.replicas - current) >= band or d.replicas in (
            policy.min_replicas,
            policy.ceiling,
        )
    # More waiting never asks for fewer replicas.
    bigger = [
        *history[:-1],
        obs(
            latest.time,
            latest.pending + 1000,
            latest.in_flight,
            latest.arrived + 1000,
            latest.completed,
        ),
    ]
    assert decide(policy, bigger, current, recent, last_down).replicas >= d.replicas
