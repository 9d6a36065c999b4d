"""The scaling policy: worked examples and properties that must hold for any input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bytereview_operator import Decision, Observation, PoolPolicy, decide

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


def test_activation_from_zero_on_the_first_message() -> None:
    d = decide(POLICY, [obs(0, 0), obs(5, 1, arrived=1)], current=0, recent=[])
    assert d.replicas == 1
    assert d.reason == "activate from zero"


def test_a_burst_is_answered_at_the_next_poll() -> None:
    # 5,000 tasks at once; each replica does 4 / 2 s = 2 per second; drain in 30 s wants 84.
    d = decide(POLICY, [obs(0, 0), obs(5, 5000, arrived=5000)], current=1, recent=[])
    assert d.recommended >= 84
    assert d.replicas == POLICY.ceiling == 16  # MaxAckPending 64 / 4 per replica


def test_steady_arrivals_follow_littles_law() -> None:
    # 6 arrivals/s, measured service 2/s per saturated replica: 3 replicas plus backlog drain.
    history = [
        obs(0, 10, 12, arrived=1000, completed=988),
        obs(10, 10, 12, arrived=1060, completed=1048),
    ]
    d = decide(POLICY, history, current=3, recent=[])
    assert math.isclose(d.arrival_rate, 6.0)
    assert math.isclose(d.service_rate, 2.0)
    assert d.replicas == math.ceil((6 + 22 / 30) / 2)


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


def test_min_replicas_is_kept_and_no_observations_changes_nothing() -> None:
    policy = PoolPolicy(min_replicas=2, max_replicas=5)
    assert decide(policy, [obs(0, 0), obs(5, 0)], current=2, recent=[]).replicas == 2
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
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"need|>="):
        PoolPolicy(**kwargs)


policies = st.builds(
    PoolPolicy,
    min_replicas=st.integers(0, 3),
    max_replicas=st.integers(3, 50),
    per_replica_concurrency=st.integers(1, 32),
    expected_task_seconds=st.floats(0.1, 600),
    target_drain_seconds=st.floats(1, 3600),
    scale_down_stabilization_seconds=st.floats(0, 900),
    max_ack_pending=st.integers(1, 10_000),
)
observations = st.builds(
    lambda t, p, f, a, c: obs(t, p, f, a + p + f, c),
    st.floats(0, 10_000),
    st.integers(0, 100_000),
    st.integers(0, 5_000),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)


@settings(max_examples=300, deadline=None)
@given(
    policies,
    st.lists(observations, min_size=1, max_size=4),
    st.integers(0, 60),
    st.lists(st.tuples(st.floats(0, 10_000), st.integers(0, 60)), max_size=5),
)
def test_properties(
    policy: PoolPolicy, history: list[Observation], current: int, recent: list[tuple[float, int]]
) -> None:
    history.sort(key=lambda o: o.time)
    d = decide(policy, history, current, recent)
    # Always within bounds (a current count outside them is pulled back in).
    assert policy.min_replicas <= d.replicas <= policy.ceiling
    latest = history[-1]
    # Work waiting means at least one replica.
    if latest.backlog > 0:
        assert d.replicas >= 1
    # Scale-down is never faster than the window allows: never below a recent recommendation.
    if d.replicas < current:
        window = [
            r for t, r in recent if latest.time - t <= policy.scale_down_stabilization_seconds
        ]
        assert d.replicas >= min(max([0, *window]), policy.ceiling) or d.replicas == policy.ceiling
    # More backlog never asks for fewer replicas.
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
    assert decide(policy, bigger, current, recent).replicas >= d.replicas
