"""Is the model's service answering? Asked when a request fails in a way that may be its own
fault or the service's (a 500, 504 or 408, a timeout, a connection cut mid-answer).

Those failures count against the task when the request is to blame (a document the model
fails on, or works on too long), but a long outage of the service shows itself the same way,
and counting them would fail every user's task after MaxDeliver. So the extractor asks the
service a tiny known-good question (the probe): if that is answered, the failure was the
request's own and counts as before; if the probe fails the same way, the service is down and
the failure becomes a wait (`unavailable`: no attempt used, the task is held).

One verdict serves every handler of the worker process: one probe in flight at a time (the
failures that arrive meanwhile await it), its verdict remembered for a few seconds, so an
outage met by eight concurrent tasks costs one probe, not eight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from services.extract import metrics
from services.extract.base import ExtractionError

log = logging.getLogger(__name__)

# How long a probe's verdict stands for the failures that come after it. Long enough that
# the failures of one outage share it (the worker's waits back off from 0.5 s to 30 s, so
# at most one probe per this many seconds however many tasks wait); short enough that the
# service back up, or a request failing on its own just after an outage, is seen soon.
REMEMBER_SECONDS = 10.0
# How long a probe may wait for its start within the requests-per-minute budget. The wait is
# made holding the verdict's lock (one probe at a time), and the shared budget's turn waits
# out NATS in place: unbounded, a NATS outage held every doubtful failure of the worker on
# the lock, uncounted as a wait. Past it there is no verdict: the failure counts, as before
# probes.
PACE_SECONDS = 30.0


def _itself(probe_failure: ExtractionError) -> bool:
    """A rate limit or a refusal of the platform's settings: true of the request as much as
    of the probe, and waited out as such (in place, no attempt used)."""
    return probe_failure.rate_limited or bool(probe_failure.misconfigured)


def _down(probe_failure: ExtractionError | None) -> bool:
    """The probe failed as an outage does: 5xx, 408, a timeout, a connection refused or cut
    (the extractor marks those retryable or unavailable). A refusal the probe cannot deserve
    (a 400 or 404 not about the settings) is an answer: the service is up."""
    if probe_failure is None or _itself(probe_failure):
        return False
    return probe_failure.unavailable or probe_failure.retryable


def _verdict(probe_failure: ExtractionError | None) -> str:
    if probe_failure is None:
        return "answered"
    if probe_failure.rate_limited:
        return "rate_limited"
    if probe_failure.misconfigured:
        return "misconfigured"
    return "down" if _down(probe_failure) else "refused"


class ModelHealth:
    """The shared verdict on the model's service (see the module docstring). `probe()`
    returns once the service answered, or raises the ExtractionError the extractor classified
    its failure as."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[None]],
        *,
        what: str,
        pace: Callable[[], Awaitable[object]] | None = None,
        pace_seconds: float = PACE_SECONDS,
        remember_seconds: float = REMEMBER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._what = what
        self._pace = pace
        self._pace_seconds = pace_seconds
        self._remember = remember_seconds
        self._clock = clock
        # A lock, not a shared future: a probe whose caller is cancelled (drain, the run-time
        # budget) ends with it, and the next waiter probes itself rather than inherit the
        # cancellation.
        self._lock = asyncio.Lock()
        self._until = 0.0  # the verdict stands until then (monotonic)
        self._failure: ExtractionError | None = None  # the last probe's, None: it answered
        self._was_down = False
        # When the service was last seen back after an outage: the start of the first probe
        # it answered after failing one (monotonic; never down yet: -inf).
        self._back_since = float("-inf")

    def now(self) -> float:
        """The clock `judged`'s `started` is read on."""
        return self._clock()

    async def judged(
        self, failure: ExtractionError, started: float | None = None
    ) -> ExtractionError:
        """What to raise for `failure`, a request's failure that may be its own or the
        service's: `failure` itself when the service answers the probe, a wait when it
        fails it as an outage does, and the probe's own error when that is a rate limit or
        a refusal of the platform's settings (either would meet the request as much as the
        probe: waited out as such, in place, no attempt used).

        `started` (on `now()`): when the request was sent. One sent before the service was
        seen back is the outage's even if the probe now answers: a request stalled by the
        outage times out after the service recovered, and counting it would use an attempt
        of every task in flight when an outage ends."""
        probe_failure = await self._verdict()
        if probe_failure is not None and _itself(probe_failure):
            return probe_failure
        if not _down(probe_failure):
            if started is None or started >= self._back_since:
                return failure
            return self._wait(failure, "sent before the service answered again after an outage")
        return self._wait(
            failure,
            f"a health probe failed too ({probe_failure}): the service is not answering",
        )

    def _wait(self, failure: ExtractionError, why: str) -> ExtractionError:
        return ExtractionError(
            f"{failure} — {why}, so the task waits for it",
            retryable=True,
            retry_after=failure.retry_after,
            # No `misconfigured`: the worker's heartbeat then says "the model (...)", which
            # the job page tells users as the service not answering.
            unavailable=True,
        )

    async def _verdict(self) -> ExtractionError | None:
        async with self._lock:
            if self._clock() < self._until:
                return self._failure
            if self._pace is not None:
                # A request like any: it takes its start from the requests-per-minute budget.
                try:
                    await asyncio.wait_for(self._pace(), self._pace_seconds)
                except TimeoutError:
                    log.warning("%s: no start for a health probe within the budget", self._what)
                    return None  # no verdict (none remembered): the failure counts
            # After the pacing: a request sent while the probe waited for its start, the
            # service still down, is the outage's if it fails after the service is back.
            probe_started = self._clock()
            try:
                await self._probe()
                probe_failure = None
            except ExtractionError as exc:
                probe_failure = exc
            except Exception as exc:
                # Not a failure the extractor knows (the SDK reading an odd answer): no sign
                # of an outage, so the request's failure counts as it did before probes.
                probe_failure = ExtractionError(
                    f"the probe failed: {type(exc).__name__}: {exc}", retryable=False
                )
            # Remembered from when the probe ended: a 30 s probe timeout must not use up
            # its verdict's time before anyone reads it.
            self._until = self._clock() + self._remember
            self._failure = probe_failure
            if self._was_down and not _down(probe_failure):
                self._back_since = probe_started
            self._said(probe_failure)
            return probe_failure

    def _said(self, probe_failure: ExtractionError | None) -> None:
        """Counted for each probe; logged when the verdict changes, not for each: an outage
        of an hour probes some hundreds of times."""
        down = _down(probe_failure)
        metrics.MODEL_PROBES.labels(_verdict(probe_failure)).inc()
        if probe_failure is not None and not down and not _itself(probe_failure):
            # The probe itself refused (a 400), or failed oddly: a bug of the probe, said so
            # that it is seen.
            log.warning("%s: the health probe was refused: %s", self._what, probe_failure)
        if down and not self._was_down:
            log.warning(
                "%s is not answering (a health probe failed: %s); its tasks wait, none fails",
                self._what,
                probe_failure,
            )
        elif self._was_down and not down:
            log.info("%s answers again; its tasks go on", self._what)
        self._was_down = down
