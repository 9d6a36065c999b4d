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
