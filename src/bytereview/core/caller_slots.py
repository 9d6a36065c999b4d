"""At most so many calls of one kind in flight per caller; RESOURCE_EXHAUSTED beyond.

For work a caller can ask for many times at once and that queues for a resource everyone
shares (a process's threads drawing pages): without a bound, one user's burst sits ahead of
everyone else's calls. Refusing at once (HTTP 429) keeps the queue short; a client retries
when one of its calls is done. Counts are per process (per replica), like the watch slots.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bytereview.core.errors import ResourceExhausted


class CallerSlots:
    def __init__(self, *, limit: int, what: str) -> None:
        self.limit = limit
        self._what = what
        self._held: dict[str, int] = {}

    def in_flight(self, caller: str) -> int:
        return self._held.get(caller, 0)

    @contextlib.contextmanager
    def held(self, caller: str) -> Iterator[None]:
        """One of `caller`'s slots for the duration of the block (released on cancellation
        too). Raises ResourceExhausted when all of them are taken."""
        if self._held.get(caller, 0) >= self.limit:
            raise ResourceExhausted(
                f"at most {self.limit} {self._what} at once per user; retry when one is done"
            )
        self._held[caller] = self._held.get(caller, 0) + 1
        try:
            yield
        finally:
            self._held[caller] -= 1
            if not self._held[caller]:
                del self._held[caller]
