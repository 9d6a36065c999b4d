"""Autoscaler simulation: the real ScalingPolicy against a KEDA-default model, same workload.

    .venv/bin/python bench/autoscaler_simulation.py [--seed N] [--max-replicas N]

A one-second-tick simulation of a work queue and a pool of pods (4 concurrent tasks per
pod, 10 s pod start-up, log-normal task times with a 2 s median). Three traffic shapes:
a burst of 5,000 tasks, a ramp, and a diurnal wave. Printed per shape and model: time to
drain, p95 task wait, replica-seconds, and tasks killed mid-flight by scale-down.

KEDA model (its NATS JetStream scaler defaults): lag = pending + ack pending read every
30 s, HPA sync every 15 s with 10% tolerance, desired = ceil(lag / 10), at most x2 or +4
pods per sync up, 300 s stabilization down; scale-down kills pods whatever they hold
(their tasks return to the queue after a 30 s AckWait).
Ours: bytereview_operator.policy.decide() every 5 s, idle pods removed first, busy pods
drain before exiting.
"""

from __future__ import annotations

import argparse
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bytereview_operator import Observation, PoolPolicy, decide

CONCURRENCY = 4
STARTUP = 10
MAX_REPLICAS = 50  # --max-replicas; with the cap binding, it bounds any policy's speed-up
ACK_WAIT = 30


@dataclass
class Pod:
    ready_at: int
    tasks: list[list[float]] = field(default_factory=list)  # [remaining, arrived_at]
    draining: bool = False


@dataclass
class Result:
    drain_time: float
    p95_wait: float
    replica_seconds: float
    killed: int


class Sim:
    def __init__(self, arrivals: Callable[[int], int], horizon: int, rng: random.Random) -> None:
        self.arrivals = arrivals
        self.horizon = horizon
        self.rng = rng
        self.queue: deque[tuple[int, int]] = deque()  # (available_at, arrived_at)
        self.pods: list[Pod] = []
        self.arrived = 0
        self.completed = 0
        self.waits: list[int] = []
        self.replica_seconds = 0.0
        self.killed = 0
        self.last_done = 0

    def service_time(self) -> float:
        return self.rng.lognormvariate(math.log(2.0), 0.6)

    def in_flight(self) -> int:
        return sum(len(p.tasks) for p in self.pods)

    def observation(self, t: int) -> Observation:
        return Observation(
            time=float(t),
            pending=len(self.queue),
            in_flight=self.in_flight(),
            arrived=self.arrived,
            completed=self.completed,
        )

    def active(self) -> int:
        return sum(1 for p in self.pods if not p.draining)

    def scale_to(self, t: int, replicas: int, *, graceful: bool) -> None:
        current = [p for p in self.pods if not p.draining]
        if replicas > len(current):
            self.pods.extend(Pod(ready_at=t + STARTUP) for _ in range(replicas - len(current)))
        elif replicas < len(current):
            # Ours: idle pods first (pod-deletion-cost), busy ones drain. KEDA: arbitrary pods die.
            victims = sorted(current, key=lambda p: len(p.tasks)) if graceful else current[::-1]
            for pod in victims[: len(current) - replicas]:
                if graceful:
                    pod.draining = True
                else:
                    for _remaining, arrived_at in pod.tasks:
                        self.queue.append((t + ACK_WAIT, int(arrived_at)))
                        self.killed += 1
                    pod.tasks.clear()
                    pod.draining = True

    def tick(self, t: int) -> None:
        for _ in range(self.arrivals(t)):
            self.queue.append((t, t))
            self.arrived += 1
        for pod in self.pods:
            if pod.ready_at > t:
                continue
            for task in pod.tasks:
                task[0] -= 1.0
            done = [task for task in pod.tasks if task[0] <= 0]
            pod.tasks = [task for task in pod.tasks if task[0] > 0]
            self.completed += len(done)
            if done:
                self.last_done = t
            while (
                not pod.draining
                and len(pod.tasks) < CONCURRENCY
                and self.queue
                and self.queue[0][0] <= t
            ):
                _, arrived_at = self.queue.popleft()
                self.waits.append(t - arrived_at)
                pod.tasks.append([self.service_time(), arrived_at])
        self.pods = [p for p in self.pods if not (p.draining and not p.tasks)]
        self.replica_seconds += len(self.pods)

    def result(self) -> Result:
        waits = sorted(self.waits)
        p95 = waits[int(0.95 * (len(waits) - 1))] if waits else 0
        return Result(float(self.last_done), float(p95), self.replica_seconds, self.killed)


def run_ours(
    arrivals: Callable[[int], int], horizon: int, seed: int, cap: int, drain: float
) -> Result:
    sim = Sim(arrivals, horizon, random.Random(seed))
    policy = PoolPolicy(
        min_replicas=0,
        max_replicas=cap,
        per_replica_concurrency=CONCURRENCY,
        expected_task_seconds=2.5,
        target_drain_seconds=drain,
        scale_down_stabilization_seconds=60,
        max_ack_pending=1000,
    )
    history: list[Observation] = []
    recent: list[tuple[float, int]] = []
    for t in range(horizon):
        sim.tick(t)
        if t % 5 == 0:
            history = [*history[-1:], sim.observation(t)]
            decision = decide(policy, history, sim.active(), recent)
            recent = [*recent, (float(t), decision.recommended)][-40:]
            sim.scale_to(t, decision.replicas, graceful=True)
    return sim.result()


def run_keda(
    arrivals: Callable[[int], int], horizon: int, seed: int, cap: int, drain: float
) -> Result:
    del drain  # KEDA has no such knob: lag / 10 per pod
    sim = Sim(arrivals, horizon, random.Random(seed))
    metric = 0
    recommendations: list[tuple[int, int]] = []
    for t in range(horizon):
        sim.tick(t)
        if t % 30 == 0:
            metric = len(sim.queue) + sim.in_flight()
        if t % 15 == 0:
            current = sim.active()
            desired = math.ceil(metric / 10)
            if current > 0 and desired > 0 and abs(desired / current - 1) <= 0.1:
                desired = current
            desired = min(desired, max(current * 2, current + 4), cap)
            recommendations = [(at, r) for at, r in recommendations if t - at < 300] + [
                (t, desired)
            ]
            if desired < current:
                desired = min(current, max(r for _, r in recommendations))
            sim.scale_to(t, desired, graceful=False)
    return sim.result()


def shapes() -> dict[str, tuple[Callable[[int], int], int]]:
    def burst(t: int) -> int:
        return 5000 if t == 0 else 0

    def ramp(t: int) -> int:  # 0 -> 20 tasks/s over 10 minutes, then stop
        return int(20 * t / 600) if t < 600 else 0

    def diurnal(t: int) -> int:  # one compressed "day" of an hour
        return max(0, round(8 + 7 * math.sin(2 * math.pi * t / 3600)))

    return {
        "burst of 5,000": (burst, 1800),
        "ramp to 20/s": (ramp, 1500),
        "diurnal wave": (diurnal, 4200),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-replicas", type=int, default=MAX_REPLICAS)
    parser.add_argument(
        "--target-drain", type=float, default=60.0, help="our WorkerPool's targetDrainSeconds"
    )
    args = parser.parse_args()
    print(
        f"max replicas {args.max_replicas}, our target drain {args.target_drain:.0f} s, "
        f"seed {args.seed}"
    )
    print(
        f"{'shape':<16} {'model':<6} {'drain s':>8} {'p95 wait s':>11} {'replica-s':>10} {'killed':>7}"
    )
    for name, (arrivals, horizon) in shapes().items():
        for model, run in (("ours", run_ours), ("keda", run_keda)):
            r = run(arrivals, horizon, args.seed, args.max_replicas, args.target_drain)
            print(
                f"{name:<16} {model:<6} {r.drain_time:>8.0f} {r.p95_wait:>11.0f} {r.replica_seconds:>10.0f} {r.killed:>7}"
            )


if __name__ == "__main__":
    main()
