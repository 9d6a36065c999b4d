"""What the policy reads from a consumer's observations: arrival and completion rates, and the
mean task time (Little's law on the worker slots), from true cumulative counts."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bytereview_operator.pool_policy import PoolPolicy


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
    # Of the in-flight messages, those whose handler is waiting on a dependency (its outage
    # or its quota; the workers' heartbeats, summed over the pool's pods): they hold their
    # slots, but no other pod would finish them sooner.
    waiting: int = 0

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


def _working(observation: Observation) -> int:
    """In-flight messages whose handler is at work, not waiting out an outage."""
    return observation.in_flight - min(observation.waiting, observation.in_flight)


def estimate(policy: PoolPolicy, observations: Sequence[Observation]) -> Estimate:
    """Arrival and completion rates, and the mean task time (Little's law on the slots)."""
    history = since_reset(observations)
    latest = history[-1]
    window = history[_window_start(history, policy.service_window_seconds) :]
    first = window[0]
    busy = 0.0  # slot-seconds spent on messages (trapezoid between polls)
    for older, newer in itertools.pairwise(window):
        # Slots waiting out an outage are not working on their tasks: counted, ten minutes
        # of an outage read as ten-minute tasks, and the pool overshot once it was over.
        working = _working(older) + _working(newer)
        busy += working / 2 * max(0.0, newer.time - older.time)
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
