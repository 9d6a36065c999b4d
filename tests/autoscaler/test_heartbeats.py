"""The workers' heartbeats as the autoscaler keeps them: by pool and pod, for a while."""

from __future__ import annotations

from bytereview.core import streams
from bytereview_operator.heartbeats import HEARTBEAT_GONE_SECONDS, WorkerHeartbeats


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_heartbeats_of_pods_gone_or_malformed_do_not_count() -> None:
    clock = Clock()
    heartbeats = WorkerHeartbeats(clock=clock)
    subject = f"{streams.WORKER_LOAD_SUBJECT}.extract-workers"
    heartbeats.record(f"{subject}.a", b'{"pod": "a", "inflight": 2, "waiting": 2}')
    # A worker of the version before: no word on outages, none waiting.
    heartbeats.record(f"{subject}.b", b'{"pod": "b", "inflight": 2}')
    for junk in (b"not json", b"[1]", b'{"pod": "c", "inflight": "x"}', b'{"inflight": 1}'):
        heartbeats.record(f"{subject}.c", junk)
    heartbeats.record("elsewhere.extract-workers.d", b'{"pod": "d", "inflight": 1, "waiting": 1}')
    assert heartbeats.waiting("extract-workers") == 2
    assert heartbeats.inflight == {"a": 2, "b": 2}
    # A pod that died mid-outage stops holding the pool's scale-ups once it is not heard from.
    clock.now += HEARTBEAT_GONE_SECONDS + 1
    assert heartbeats.waiting("extract-workers") == 0


def test_pods_gone_are_forgotten_in_every_pool() -> None:
    """Pod names change with every scale-down and rollout: the gone ones must not pile up."""
    clock = Clock()
    heartbeats = WorkerHeartbeats(clock=clock)
    prefix = streams.WORKER_LOAD_SUBJECT
    for round_ in range(50):
        for pool in ("extract-workers", "ingest-workers"):
            pod = f"{pool}-{round_}"
            heartbeats.record(
                f"{prefix}.{pool}.{pod}", f'{{"pod": "{pod}", "inflight": 1}}'.encode()
            )
        clock.now += HEARTBEAT_GONE_SECONDS / 3
    assert heartbeats.waiting("extract-workers") == 0  # as each poll reads it
    # Heard within the last HEARTBEAT_GONE_SECONDS: the last three rounds of each pool.
    assert sorted(heartbeats.inflight) == sorted(
        f"{pool}-{n}" for pool in ("extract-workers", "ingest-workers") for n in (47, 48, 49)
    )
