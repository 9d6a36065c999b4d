"""The autoscaler simulation is fair: the chart's own settings, the same work for both
models, nothing lost, MaxAckPending for both, and KEDA + HPA behaving as they do."""

from __future__ import annotations

import dataclasses
import random
import statistics
from pathlib import Path

import yaml

from bench.autoscaler_simulation import (
    STARTUP_SECONDS,
    Keda,
    PoolModel,
    Result,
    Task,
    beats,
    chart_pools,
    run_keda,
    run_ours,
    shapes,
    workload,
)
from bytereview.core import streams
from bytereview.core.settings import Settings

VALUES = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "bytereview" / "values.yaml"


def test_the_simulated_pools_are_the_charts_defaults() -> None:
    values = yaml.safe_load(VALUES.read_text())
    pools = chart_pools()
    settings = Settings()
    for name, concurrency, queue in (
        ("extract", values["extract"]["concurrency"], streams.extract_queue(settings)),
        ("ingest", values["ingest"]["concurrency"], streams.ingest_queue(settings)),
    ):
        policy = pools[name].spec.policy
        shipped = values[name]
        assert policy.min_replicas == shipped["minReplicas"]
        assert policy.max_replicas == shipped["maxReplicas"]
        assert policy.per_replica_concurrency == concurrency
        assert policy.expected_task_seconds == shipped["expectedTaskSeconds"]
        assert policy.target_drain_seconds == shipped["targetDrainSeconds"]
        assert policy.target_wait_seconds == shipped["targetWaitSeconds"]
        assert policy.scale_down_stabilization_seconds == shipped["scaleDownStabilizationSeconds"]
        assert pools[name].max_ack_pending == queue.max_ack_pending


def burst(n: int, seconds: float, seed: int) -> list[Task]:
    rng = random.Random(seed)
    return [Task(0.0, rng.uniform(0.5, 2) * seconds) for _ in range(n)]


def small(pool: PoolModel, max_ack_pending: int) -> PoolModel:
    return dataclasses.replace(pool, max_ack_pending=max_ack_pending)


def test_every_task_runs_once_and_max_ack_pending_binds_both_models() -> None:
    pool = small(chart_pools()["extract"], 24)  # 3 pods' worth of slots at 8 each
    tasks = burst(600, 2, seed=1)
    for result in (
        run_ours(pool, tasks, 600, seed=1),
        run_keda(pool, tasks, 600, seed=1, keda=Keda()),
    ):
        assert result.completed == len(tasks)
        assert result.peak_in_flight == 24
        # Scale-downs drained their pods: all the work was done, none twice.
        assert result.targets[-1][1] == pool.spec.policy.min_replicas


def test_keda_reads_the_lag_live_and_ramps_within_the_hpa_limits() -> None:
    pool = chart_pools()["extract"]
    tasks = burst(5000, 2, seed=2)
    firsts = set()
    for seed in range(1, 6):
        result = run_keda(pool, tasks, 900, seed=seed, keda=Keda())
        (_, start), (t1, first), (t2, second) = result.targets[:3]
        assert start == 1
        # Read live at the first sync after the burst (a random phase in 15 s), not 30 s late.
        assert 0 <= t1 < 15
        assert first == max(2 * start, start + 4)  # the HPA's scale-up limit per sync
        assert t2 - t1 == 15
        assert second == min(max(2 * first, first + 4), pool.spec.policy.max_replicas)
        firsts.add(round(t1, 3))
    assert len(firsts) == 5  # the phase differs between seeds


def test_ours_polls_at_a_random_phase_and_answers_a_burst_at_its_first_poll() -> None:
    pool = chart_pools()["extract"]
    tasks = burst(5000, 2, seed=3)
    firsts = set()
    for seed in range(1, 6):
        result = run_ours(pool, tasks, 900, seed=seed)
        (_, start), (t1, first) = result.targets[:2]
        assert start == pool.spec.policy.min_replicas
        assert 0 <= t1 < pool.spec.poll_seconds
        assert first == pool.spec.policy.ceiling
        firsts.add(round(t1, 3))
        # Pods take the same start-up time in both models: nothing finishes before it.
        assert result.last_done > STARTUP_SECONDS
    assert len(firsts) == 5


def test_the_shipped_ingest_pool_beats_kedas_default_on_steady_traffic() -> None:
    """One-archive pods at the chart's defaults: a ramp and a diurnal wave wait less than
    under KEDA at lagThreshold 10 on no more pod-seconds (sized by the arrival rate, the
    pool spent 1.8-2.3x KEDA's pod-seconds; README, Autoscaler simulation)."""
    pool = chart_pools()["ingest"]
    for index in (1, 3):  # the ramp, the diurnal wave
        rng = random.Random(1)
        shape = shapes(pool, rng)[index]
        tasks = workload(shape, pool, rng)
        ours = run_ours(pool, tasks, shape.horizon, seed=1)
        keda = run_keda(pool, tasks, shape.horizon, seed=1, keda=Keda())
        assert ours.completed == keda.completed == len(tasks)
        assert beats(ours, keda, burst=False), (shape.name, ours, keda)


def test_the_shipped_ingest_pool_does_not_flip_more_than_keda_where_it_used_to() -> None:
    """Direction changes (README, Autoscaler simulation): on ramp seed 101 the pool added a
    pod early in the ramp and took it away again (3 against KEDA's 1) because the arrival
    rate lags a rising load; on spikes seed 1 it scaled down between two spikes 265 s
    apart (7 against 5). With the trend and the burst hold, at KEDA's count and still
    beating it. Ramp seeds 103 and 202 did the same (3 against 1): 103 a rise the trend
    test missed at two standard errors, 202 a pod removed 50 s after it was added, before
    the trend test had the history to see a rise (now kept a wait target). Ramp seed 305
    added a pod at a queue of 7 and took it away 215 s later, when the two halves of the
    last ten minutes held 15 and 17 arrivals (no trend on the counts): the load of a
    growing queue is now rounded up a while. On one seed the pod kept may cost a few
    replica-seconds more than KEDA (202, 305): the next test holds the mean over seeds."""
    pool = chart_pools()["ingest"]
    for index, seed in ((1, 101), (2, 1), (1, 103), (1, 202), (1, 305)):  # ramps, spikes
        rng = random.Random(seed)
        shape = shapes(pool, rng)[index]
        tasks = workload(shape, pool, rng)
        ours = run_ours(pool, tasks, shape.horizon, seed=seed)
        keda = run_keda(pool, tasks, shape.horizon, seed=seed, keda=Keda())
        assert ours.direction_changes <= keda.direction_changes, (shape.name, ours.targets)
        assert ours.p95_wait < keda.p95_wait, (shape.name, ours, keda)


def test_the_shipped_ingest_ramp_beats_keda_over_fresh_seeds() -> None:
    """The README's ramp row on seeds 301-315, where three seeds once flipped more than
    KEDA: on the means, fewer direction changes or as many, a lower p95 wait, and fewer
    replica-seconds."""
    pool = chart_pools()["ingest"]
    ours_runs, keda_runs = [], []
    for seed in range(301, 316):
        rng = random.Random(seed)
        shape = shapes(pool, rng)[1]
        tasks = workload(shape, pool, rng)
        ours_runs.append(run_ours(pool, tasks, shape.horizon, seed=seed))
        keda_runs.append(run_keda(pool, tasks, shape.horizon, seed=seed, keda=Keda()))

    def mean(runs: list[Result], measure: str) -> float:
        return statistics.fmean(getattr(r, measure) for r in runs)

    assert mean(ours_runs, "direction_changes") <= mean(keda_runs, "direction_changes")
    assert mean(ours_runs, "p95_wait") < mean(keda_runs, "p95_wait")
    assert mean(ours_runs, "replica_seconds") <= mean(keda_runs, "replica_seconds")


def test_both_models_run_until_back_at_their_minimum_after_the_horizon() -> None:
    """The run does not stop at the horizon once the last task is done: KEDA's scale-down
    comes a 300 s window after the work and ours within seconds; both scale-downs, and the
    idle pods' seconds until them, are counted (stopping at the horizon counted ours and
    not KEDA's)."""
    pool = chart_pools()["extract"]
    tasks = burst(600, 2, seed=4)
    low = pool.spec.policy.min_replicas
    keda = run_keda(pool, tasks, 30, seed=4, keda=Keda())
    ours = run_ours(pool, tasks, 30, seed=4)
    for result in (keda, ours):
        assert result.completed == len(tasks)
        assert result.targets[-1][1] == low
        assert result.direction_changes == 1  # up, then down: the way down is in the count
    # KEDA holds its pods for the stabilization window after the lag is gone.
    down_at = keda.targets[-1][0]
    assert down_at > keda.last_done + Keda().stabilization_down - Keda().hpa_sync
    held = max(n for _, n in keda.targets)
    assert keda.replica_seconds > (down_at - keda.last_done) * held * 0.5
