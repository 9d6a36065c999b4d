"""Which of several operator replicas acts: kopf peering with start-time priorities.

Every replica announces itself in the chart's KopfPeering object; kopf pauses every
replica that sees a live peer of higher priority, and pauses all of them on a tie. So the
priority must differ between replicas and should favour the one already acting: the
earlier a replica started, the higher its priority (a restarted or added replica waits
behind the running one instead of taking over), with a random tail against two replicas
starting in the same millisecond. When the acting replica dies its peering record
expires (kopf's lifetime, 60 s by default) and the next one resumes.
"""

from __future__ import annotations

import secrets
import time

# Larger than any epoch in milliseconds for centuries; the result stays below 2**53,
# so it survives a JSON round trip through the peering object exactly.
_EPOCH_CEILING_MS = 9 * 10**12


def priority(now: float | None = None) -> int:
    started_ms = int((time.time() if now is None else now) * 1000)
    return (_EPOCH_CEILING_MS - started_ms) * 1000 + secrets.randbelow(1000)
