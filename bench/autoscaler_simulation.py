"""Autoscaler simulation: the operator's policy against KEDA + HPA, same pods, same work.

    .venv/bin/python bench/autoscaler_simulation.py [--seeds N] [--first-seed S] [--pool extract|ingest]

Both pools exactly as the Helm chart ships them: the WorkerPool specs are rendered from
deploy/helm/bytereview with its default values and parsed by the operator's own PoolSpec;
MaxAckPending is the real consumer's (bytereview.core.streams). Workloads: extract takes
~2 s per task (log-normal, median 2 s), 8 per pod; ingest ~20 s, 1 per pod; pods take 10 s
to start. Shapes: a burst, a ramp that stops, spikes on a low base, and a diurnal wave,
with Poisson arrivals. Each seed draws one workload (arrival times and task lengths) that
both models run.

Event-driven (no time rounding). What is the same for both models:
- a pod pulls a waiting message as soon as it has a free slot and the consumer's
  MaxAckPending allows one more unacknowledged message;
- scale-down removes pods as a ReplicaSet does (not-ready pods first, then the lowest
  `pod-deletion-cost`, then the newest) and every removed pod drains: it takes no new
  work, finishes what it holds, and exits (our workers do this on SIGTERM whoever scales
  them; the chart's grace periods outlast any task);
- both control loops start at a random phase to the traffic;
- arrivals stop at the horizon and the run goes on until the pool is back at its minimum
  with nothing queued or running: replica-seconds, scale events and direction changes
  include each controller's scale-down after the traffic.

KEDA (nats-jetstream scaler) + HPA, at their defaults: metric = num_pending +
num_ack_pending, read live at every HPA sync (every 15 s); AverageValue target lagThreshold
10; 10% tolerance; scale-up at most max(x2, +4) per sync; scale-down to the highest
recommendation of the last 300 s; KEDA's own 30 s poll only activates from zero and
deactivates after a 300 s cooldown (the chart's minReplicas is 1, so it never does).
KEDA sets no deletion cost, so its removed pods are the newest.
Ours: bytereview_operator ScaleState.decide every pollSeconds, on true counts; before a
scale-down it sets each pod's deletion cost to its in-flight count (idle pods go first).

KEDA runs twice: at lagThreshold 10 (its default) and at the pod's concurrency (what a
KEDA user would set for one-at-a-time ingest pods).

Printed per pool and shape: mean over the seeds of the time the last task finishes, p95
wait (arrival to start), replica-seconds (starting and draining pods included), scale
events, direction changes; and, on each KEDA row, on how many seeds ours beats it (burst:
done sooner AND fewer replica-seconds; other shapes: lower p95 wait AND no more
replica-seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import itertools
import json
import math
import random
import statistics
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from bytereview.core import streams
from bytereview.core.settings import Settings
from bytereview_operator.estimates import Observation
from bytereview_operator.reconcile import PoolSpec, ScaleState

CHART = Path(__file__).resolve().parents[1] / "deploy" / "helm" / "bytereview"
STARTUP_SECONDS = 10.0
WARM_UP_SECONDS = 600.0  # quiet time before the traffic, so both controllers have history
SIGMA = 0.6  # log-normal spread of task times
# A model not back at its minimum this long after the horizon is a bug, not a slow scale-down.
SETTLE_LIMIT_SECONDS = 7200.0


@dataclass(frozen=True)
class PoolModel:
    name: str
    spec: PoolSpec
    max_ack_pending: int  # the consumer's real MaxAckPending
    median_task_seconds: float

    @property
    def concurrency(self) -> int:
        return self.spec.policy.per_replica_concurrency

    @property
    def mean_task_seconds(self) -> float:
        return self.median_task_seconds * math.exp(SIGMA**2 / 2)


def chart_pools(values: dict[str, Any] | None = None) -> dict[str, PoolModel]:
    """The WorkerPools `helm install` creates (default values unless given), parsed as the
    operator parses them."""
    rendered = helm.Chart.load(CHART).render(
        values or {}, name="br", namespace="br", is_install=True
    )
    specs: dict[str, PoolSpec] = {}
    for path, text in rendered.items():
        if path.endswith(".yaml"):
            for doc in yaml.safe_load_all(text):
                if doc and doc.get("kind") == "WorkerPool":
                    spec = PoolSpec.parse(doc["spec"])
                    specs[spec.consumer] = spec
    settings = Settings()
    ingest, extract = streams.ingest_queue(settings), streams.extract_queue(settings)
    return {
        "extract": PoolModel("extract", specs[extract.durable], extract.max_ack_pending, 2.0),
        "ingest": PoolModel("ingest", specs[ingest.durable], ingest.max_ack_pending, 20.0),
    }


@dataclass(frozen=True)
class Task:
    arrived: float
    work: float


@dataclass(frozen=True)
class Shape:
    name: str
    horizon: float
    rate: Callable[[float], float]  # Poisson arrivals per second at time t
    peak: float  # an upper bound of rate, for thinning
    burst: int = 0  # tasks all arriving at t = 0


def shapes(pool: PoolModel, rng: random.Random) -> list[Shape]:
    """Traffic scaled to the pool: `cap` is what max replicas complete per second."""
    p = pool.spec.policy
    cap = p.max_replicas * p.per_replica_concurrency / pool.mean_task_seconds
    slow = pool.mean_task_seconds > 10  # ingest: everything takes longer
    burst = 5000 if not slow else 100
    ramp_len = 600.0 if not slow else 1200.0
    ramp_top = 0.45 * cap
    period = 3600.0 if not slow else 7200.0
    horizon = 1800.0 if not slow else 3600.0
    # Spikes come at random (exponential gaps), each a tenth of the mean gap's capacity.
    gap = 300.0 if not slow else 900.0
    spike = round(0.1 * cap * gap)
    starts: list[float] = []
    t = rng.expovariate(1 / gap)
    while t < horizon:
        starts.append(t)
        t += rng.expovariate(1 / gap)

    def ramp(t: float) -> float:
        return ramp_top * t / ramp_len if 0 <= t < ramp_len else 0.0

    def spiky(t: float) -> float:
        return 0.05 * cap + (spike / 5 if any(0 <= t - s < 5 for s in starts) else 0.0)

    def diurnal(t: float) -> float:
        return max(0.0, 0.25 * cap + 0.2 * cap * math.sin(2 * math.pi * t / period))

    return [
        Shape(f"burst of {burst:,}", horizon, lambda t: 0.0, 0.0, burst),
        Shape(f"ramp to {ramp_top:.3g}/s", ramp_len * 2, ramp, ramp_top),
        Shape(f"spikes of {spike:,}", horizon, spiky, 0.05 * cap + spike / 5),
        Shape("diurnal wave", period, diurnal, 0.45 * cap),
    ]


def workload(shape: Shape, pool: PoolModel, rng: random.Random) -> list[Task]:
    def work() -> float:
        return rng.lognormvariate(math.log(pool.median_task_seconds), SIGMA)

    tasks = [Task(0.0, work()) for _ in range(shape.burst)]
    t = 0.0
    while shape.peak > 0:
        t += rng.expovariate(shape.peak)
        if t >= shape.horizon:
            break
        if rng.random() * shape.peak < shape.rate(t):  # thinning
            tasks.append(Task(t, work()))
    return tasks


@dataclass
class Pod:
    serial: int
    ready_at: float
    running: int = 0
    draining: bool = False


@dataclass
class Result:
    last_done: float
    p95_wait: float
    replica_seconds: float
    scale_events: int
    direction_changes: int
    # (time, replicas) of every change of the target, the initial count first.
    targets: list[tuple[float, int]]
    completed: int
    peak_in_flight: int


@dataclass
class Cluster:
    """Pods, the work queue and the consumer's counters; the controllers act on it."""

    pool: PoolModel
    rng: random.Random
    deletion_cost: bool
    now: float = -WARM_UP_SECONDS
    queue: deque[Task] = field(default_factory=deque)
    pods: list[Pod] = field(default_factory=list)
    arrived: int = 0
    completed: int = 0
    in_flight: int = 0
    waits: list[float] = field(default_factory=list)
    replica_seconds: float = 0.0
    last_done: float = 0.0
    targets: list[tuple[float, int]] = field(default_factory=list)
    peak_in_flight: int = 0
    _events: list[tuple[float, int, str, Any]] = field(default_factory=list)
    _serial: Iterator[int] = field(default_factory=itertools.count)

    def at(self, when: float, kind: str, payload: Any = None) -> None:
        heapq.heappush(self._events, (when, next(self._serial), kind, payload))

    def active(self) -> list[Pod]:
        return [p for p in self.pods if not p.draining]

    def observation(self) -> Observation:
        return Observation(self.now, len(self.queue), self.in_flight, self.arrived, self.completed)

    def start(self, replicas: int) -> None:
        self.pods = [Pod(next(self._serial), self.now) for _ in range(replicas)]
        self.targets.append((self.now, replicas))

    def scale_to(self, replicas: int) -> None:
        active = self.active()
        if replicas == len(active):
            return
        self.targets.append((self.now, replicas))
        if replicas > len(active):
            for _ in range(replicas - len(active)):
                pod = Pod(next(self._serial), self.now + STARTUP_SECONDS)
                self.pods.append(pod)
                self.at(pod.ready_at, "ready")
            return

        # The ReplicaSet's order: not ready first, then lower deletion cost, then newest.
        def rank(pod: Pod) -> tuple[bool, int, int]:
            cost = pod.running if self.deletion_cost else 0
            return (pod.ready_at <= self.now, cost, -pod.serial)

        for pod in sorted(active, key=rank)[: len(active) - replicas]:
            pod.draining = True
        self.pods = [p for p in self.pods if not (p.draining and p.running == 0)]

    def dispatch(self) -> None:
        while self.queue and self.in_flight < self.pool.max_ack_pending:
            free = [
                p
                for p in self.pods
                if not p.draining and p.ready_at <= self.now and p.running < self.pool.concurrency
            ]
            if not free:
                return
            pod = self.rng.choice(free)
            task = self.queue.popleft()
            pod.running += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self.waits.append(self.now - task.arrived)
            self.at(self.now + task.work, "done", pod)

    def settled(self) -> bool:
        """Nothing waiting or running, and back at the pool's minimum: no pod starting,
        none draining, none idle above it."""
        return (
            not self.queue
            and not self.in_flight
            and len(self.pods) == self.pool.spec.policy.min_replicas
        )

    def run(self, tasks: list[Task], horizon: float) -> Result:
        """Until the horizon, then (no more arrivals) until the pool has settled back at its
        minimum: a controller's scale-down after the traffic and its idle pods' seconds until
        then are part of its cost, whichever model it is (stopping at the horizon did not
        count KEDA's 300 s window after the last spike, but did count ours)."""
        for task in tasks:
            self.at(task.arrived, "arrive", task)
        while self._events:
            when, _, kind, payload = heapq.heappop(self._events)
            if when > horizon and self.settled():
                when = max(horizon, self.now)  # settled since then: count pods up to it
                self.replica_seconds += len(self.pods) * (when - max(self.now, 0.0))
                break
            # Pods are counted from the traffic's start (the warm-up costs both the same).
            self.replica_seconds += len(self.pods) * max(0.0, when - max(self.now, 0.0))
            self.now = when
            if kind == "arrive":
                self.queue.append(payload)
                self.arrived += 1
            elif kind == "done":
                pod: Pod = payload
                pod.running -= 1
                self.in_flight -= 1
                self.completed += 1
                self.last_done = when
                if pod.draining and pod.running == 0:
                    self.pods.remove(pod)
            elif kind == "tick":
                payload(self)
            self.dispatch()
        else:
            raise RuntimeError(f"not settled {SETTLE_LIMIT_SECONDS:g} s after the horizon")
        waits = sorted(self.waits)
        p95 = waits[int(0.95 * (len(waits) - 1))] if waits else 0.0
        changes = [b - a for (_, a), (_, b) in itertools.pairwise(self.targets)]
        flips = sum(1 for a, b in itertools.pairwise(changes) if (a > 0) != (b > 0))
        return Result(
            self.last_done,
            p95,
            self.replica_seconds,
            len(changes),
            flips,
            self.targets,
            self.completed,
            self.peak_in_flight,
        )


def every(
    cluster: Cluster, interval: float, horizon: float, act: Callable[[Cluster], None]
) -> None:
    """A control loop at a random phase to the traffic, until the run must have settled."""
    t = -WARM_UP_SECONDS + cluster.rng.uniform(0, interval)
    while t < horizon + SETTLE_LIMIT_SECONDS:
        cluster.at(t, "tick", act)
        t += interval


def run_ours(pool: PoolModel, tasks: list[Task], horizon: float, seed: int) -> Result:
    cluster = Cluster(pool, random.Random(seed), deletion_cost=True)
    cluster.start(pool.spec.policy.min_replicas)
    state = ScaleState()

    def poll(c: Cluster) -> None:
        decision = state.decide(pool.spec.policy, c.observation(), len(c.active()))
        c.scale_to(decision.replicas)

    every(cluster, pool.spec.poll_seconds, horizon, poll)
    return cluster.run(tasks, horizon)


@dataclass(frozen=True)
class Keda:
    lag_threshold: float = 10.0
    polling_interval: float = 30.0
    cooldown: float = 300.0
    hpa_sync: float = 15.0
    tolerance: float = 0.1
    stabilization_down: float = 300.0


def run_keda(pool: PoolModel, tasks: list[Task], horizon: float, seed: int, keda: Keda) -> Result:
    cluster = Cluster(pool, random.Random(seed), deletion_cost=False)
    lo, hi = pool.spec.policy.min_replicas, pool.spec.policy.max_replicas
    cluster.start(lo)
    recommendations: deque[tuple[float, int]] = deque()
    last_active = -math.inf

    def lag(c: Cluster) -> int:
        return len(c.queue) + c.in_flight

    def keda_poll(c: Cluster) -> None:  # activation and deactivation only (minReplicaCount 0)
        nonlocal last_active
        if lag(c) > 0:
            last_active = c.now
        current = len(c.active())
        if lo == 0 and current == 0 and lag(c) > 0:
            c.scale_to(1)
        elif lo == 0 and current > 0 and c.now - last_active >= keda.cooldown:
            c.scale_to(0)

    def hpa_sync(c: Cluster) -> None:
        current = len(c.active())
        if current == 0:
            return  # the HPA is idle while KEDA holds the target at zero
        metric = lag(c)  # read live: the metrics adapter asks the scaler at each sync
        ratio = metric / (keda.lag_threshold * current)
        wanted = current if abs(ratio - 1) <= keda.tolerance else math.ceil(ratio * current)
        wanted = min(max(wanted, max(lo, 1)), hi)
        recommendations.append((c.now, wanted))
        while c.now - recommendations[0][0] > keda.stabilization_down:
            recommendations.popleft()
        desired = wanted
        if wanted < current:
            desired = min(current, max(r for _, r in recommendations))
        desired = min(desired, max(2 * current, current + 4))
        c.scale_to(desired)

    every(cluster, keda.polling_interval, horizon, keda_poll)
    every(cluster, keda.hpa_sync, horizon, hpa_sync)
    return cluster.run(tasks, horizon)


def fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--first-seed", type=int, default=1, help="seeds first..first+N-1 (check other draws)"
    )
    parser.add_argument("--pool", choices=["extract", "ingest"], action="append")
    parser.add_argument("--lag-threshold", type=float, default=10.0, help="KEDA's lagThreshold")
    parser.add_argument(
        "--values", type=json.loads, default={}, help="what-if: chart values as JSON"
    )
    parser.add_argument(
        "--policy",
        action="append",
        default=[],
        help="what-if: a PoolPolicy field not in the chart, as name=number",
    )
    parser.add_argument(
        "--no-tuned",
        dest="tuned",
        action="store_false",
        help="leave out the KEDA rows with lagThreshold = the pod's concurrency",
    )
    args = parser.parse_args()
    pools = chart_pools(args.values)
    for override in args.policy:
        key, value = override.split("=")
        for name, pool_model in pools.items():
            fields: dict[str, Any] = {key: type(getattr(pool_model.spec.policy, key))(value)}
            policy = dataclasses.replace(pool_model.spec.policy, **fields)
            pools[name] = dataclasses.replace(
                pool_model, spec=dataclasses.replace(pool_model.spec, policy=policy)
            )
    for name in args.pool or ["extract", "ingest"]:
        p = pools[name].spec.policy
        print(
            f"{name}: replicas {p.min_replicas}-{p.max_replicas}, {p.per_replica_concurrency} per "
            f"pod, targetDrainSeconds {p.target_drain_seconds:g}, scaleDownStabilizationSeconds "
            f"{p.scale_down_stabilization_seconds:g}, pollSeconds {pools[name].spec.poll_seconds:g}"
            f", targetWaitSeconds {p.target_wait_seconds:g}"
            f", MaxAckPending {pools[name].max_ack_pending}"
        )
    print(
        "\n| pool | shape | model | last task done s | p95 wait s | replica-s | scale events "
        "| direction changes | ours better on |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.pool or ["extract", "ingest"]:
        pool = pools[name]
        baselines = [(f"KEDA (lag {args.lag_threshold:g})", Keda(lag_threshold=args.lag_threshold))]
        if args.tuned and pool.concurrency != args.lag_threshold:
            baselines.append(
                (f"KEDA (lag {pool.concurrency})", Keda(lag_threshold=pool.concurrency))
            )
        for index in range(4):
            results: dict[str, list[Result]] = {"ours": []}
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                rng = random.Random(seed)
                shape = shapes(pool, rng)[index]
                tasks = workload(shape, pool, rng)
                results["ours"].append(run_ours(pool, tasks, shape.horizon, seed))
                for label, keda in baselines:
                    run = run_keda(pool, tasks, shape.horizon, seed, keda)
                    results.setdefault(label, []).append(run)
            for model, runs in results.items():
                row = [
                    statistics.fmean(r.last_done for r in runs),
                    statistics.fmean(r.p95_wait for r in runs),
                    statistics.fmean(r.replica_seconds for r in runs),
                    statistics.fmean(r.scale_events for r in runs),
                    statistics.fmean(r.direction_changes for r in runs),
                ]
                verdict = ""
                if model != "ours":
                    wins = sum(
                        beats(o, k, burst=shape.burst > 0)
                        for o, k in zip(results["ours"], runs, strict=True)
                    )
                    verdict = f"{wins}/{len(runs)} seeds"
                cells = " | ".join(fmt(x) for x in row)
                print(f"| {name} | {shape.name} | {model} | {cells} | {verdict} |")


def beats(ours: Result, keda: Result, *, burst: bool) -> bool:
    """The issue's bar: a burst drains sooner on fewer replica-seconds; other traffic waits
    less (p95) on no more replica-seconds."""
    if burst:
        return ours.last_done < keda.last_done and ours.replica_seconds < keda.replica_seconds
    return ours.p95_wait < keda.p95_wait and ours.replica_seconds <= keda.replica_seconds


if __name__ == "__main__":
    main()
