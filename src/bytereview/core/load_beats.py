"""A worker's load heartbeat, as it travels: `{"pod", "inflight", "waiting", "waiting_on"}`
every 2 s on `WORKER_LOAD_SUBJECT.<durable>.<pod>`. Written by worker_runtime; read by the
autoscalers (the operator) and by the jobs service (the admin queue view, a held job's
reasons), which must agree on what a beat says and when its pod is gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bytereview.core.streams import WORKER_LOAD_SUBJECT

# A pod not heard from for this long is gone (it beats every 2 s): its last word must not
# hold a pool's scale-ups, nor stand in the admin view, after it died.
GONE_AFTER_SECONDS = 15.0
# What a beat may say its handlers wait on: a few short phrases (a malformed or hostile one on
# the subject is cut, not kept whole in a reader's memory).
MAX_REASONS = 10
MAX_REASON_CHARS = 200


@dataclass(frozen=True, slots=True)
class LoadBeat:
    durable: str  # the pool's consumer
    pod: str
    inflight: int
    # In-flight tasks waiting on a dependency (its outage or its quota), and on what; absent
    # from workers older than them (none waits).
    waiting: int = 0
    waiting_on: tuple[str, ...] = ()


def subject(durable: str, pod: str) -> str:
    return f"{WORKER_LOAD_SUBJECT}.{durable}.{pod}"


def encode(beat: LoadBeat) -> bytes:
    return json.dumps(
        {
            "pod": beat.pod,
            "inflight": beat.inflight,
            "waiting": beat.waiting,
            "waiting_on": list(beat.waiting_on),
        }
    ).encode()


def decode(on_subject: str, data: bytes) -> LoadBeat | None:
    """The beat, or None for a malformed one (a worker must not stop its readers)."""
    # `<prefix>.<durable>.<pod>`: the durable is the token after the prefix.
    tokens = on_subject[len(WORKER_LOAD_SUBJECT) + 1 :].split(".", 1)
    if not on_subject.startswith(f"{WORKER_LOAD_SUBJECT}.") or len(tokens) != 2:
        return None
    try:
        beat = json.loads(data)
        waiting_on = beat.get("waiting_on") or []
        return LoadBeat(
            durable=tokens[0],
            pod=str(beat["pod"]),
            inflight=int(beat["inflight"]),
            waiting=int(beat.get("waiting", 0)),
            waiting_on=tuple(str(r)[:MAX_REASON_CHARS] for r in waiting_on[:MAX_REASONS]),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
