"""The worker runtime: pulls from one durable consumer and drives a handler per message.

A handler returns (ack) or raises a classified error; the Worker alone turns that into
ack, nak(delay) or term, and renews each message's AckWait with in-progress acks while its
handler runs. Queue declarations live in `bytereview.core.streams`.

Two kinds of trouble are kept apart (#17):
- the task's own failures (`RetryLater`, any other exception, running past the maximum run
  time) release the message, and each redelivery counts towards MaxDeliver;
- a dependency being down (`DependencyDown`, or a call retried by `outlast`) is waited out in
  place, with exponential backoff and jitter, for as long as it takes. The message stays
  with this worker (in-progress acks keep it), so JetStream never redelivers it and no
  attempt is used; the wait does not count towards the maximum run time either. A worker
  stopped meanwhile puts such a message back as a copy that says its delivery was released
  (`_requeue`), rather than nak it and use an attempt.
  Each worker's heartbeat says how many of its handlers are waiting so (`waiting`), and on
  what (`waiting_on`: "the jobs service", "the model (gemini:...): credentials rejected"):
  the autoscaler holds scale-ups while most of a pool's tasks wait, since new pods would
  wait too, and an operator sees why they wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from bytereview.core import load_beats
from bytereview.core.fair_pull import FairPuller
from bytereview.core.streams import QueueSpec

log = logging.getLogger(__name__)
T = TypeVar("T")

# A fetch asks JetStream for messages for this long, then the loop comes round again.
FETCH_SECONDS = 1.0


class RetryLater(Exception):
    """The task failed in a way worth another attempt: redeliver after `delay` seconds."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Permanent(Exception):
    """Will never succeed: stop redelivering (the handler has recorded why)."""


class Superseded(Exception):
    """A later delivery of the message runs the task now (the jobs service said the handler's
    report was of an earlier attempt): leave the message alone. JetStream settles a message,
    not one delivery of it, so an ack, nak or term here would settle the later run's."""


class DependencyDown(Exception):
    """A dependency (the jobs service, storage, NATS...) is unreachable: not the task's fault.

    The Worker runs the handler again in place after a backoff, holding the message.
    """


class RanTooLong(Exception):
    """The handler ran past the maximum run time (outage waits excluded): it was cancelled
    and its message released, a failure of the task like any other."""


@dataclass(frozen=True, slots=True)
class Delivery:
    data: bytes
    subject: str
    # The task's delivery number, across the copies a drain put back (_requeue): each
    # delivery's higher than the last, as the jobs service's attempts must be.
    attempt: int
    max_deliver: int
    # Of the deliveries before this one, those a drain released while their handler waited
    # on a dependency: they did not run the task, and use none of its attempts.
    released: int = 0

    @property
    def is_last_attempt(self) -> bool:
        return self.max_deliver > 0 and self.attempt - self.released >= self.max_deliver


# A copy of a message put back by a drain says what came before it (_requeue): JetStream
# counts deliveries per message, so the copy's own count starts again at one.
DELIVERIES_BEFORE = "Bytereview-Deliveries-Before"
RELEASED = "Bytereview-Released"


def _count(headers: dict[str, str] | None, name: str) -> int:
    try:
        return max(0, int((headers or {}).get(name, "0")))
    except ValueError:
        return 0


Handler = Callable[[Delivery], Awaitable[None]]


class Backoff:
    """Exponential backoff with jitter: each delay is between half and all of the step."""

    def __init__(self, *, first: float = 0.5, factor: float = 2.0, cap: float = 30.0) -> None:
        self._first = first
        self._factor = factor
        self._cap = cap
        self._step = first

    def next(self) -> float:
        step = self._step
        self._step = min(self._cap, self._step * self._factor)
        return step / 2 + random.uniform(0, step / 2)

    def reset(self) -> None:
        self._step = self._first


# The running message's maximum-run-time deadline (one per handler task).
_run_budget: contextvars.ContextVar[asyncio.Timeout | None] = contextvars.ContextVar(
    "run_budget", default=None
)


class _OutageWaits:
    """How many of a worker's handlers are waiting out an outage right now.

    A handler can wait in several places at once (its calls gathered, each in `outlast`), so
    each handler keeps its waits going on and counts once while it has any.
    """

    def __init__(self) -> None:
        self.handlers = 0
        self.waiting: set[_HandlerWaits] = set()  # the handlers counted in `handlers`

    def reasons(self) -> list[str]:
        """What the waiting handlers wait on, each said once (those that said)."""
        return sorted({w.reason for w in self.waiting if w.reason})

    @contextlib.contextmanager
    def handler(self, waits: _HandlerWaits | None = None) -> Iterator[_HandlerWaits]:
        waits = waits or _HandlerWaits(self)
        token = _handler_waits.set(waits)
        try:
            yield waits
        finally:
            _handler_waits.reset(token)


class _WaitingOn:
    """What one wait of a handler waits on (empty: it does not say)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _HandlerWaits:
    def __init__(self, worker: _OutageWaits) -> None:
        self._worker = worker
        # Its waits going on, oldest first (gathered calls each wait, and end in any order):
        # it counts as waiting while there is one.
        self._waits: list[_WaitingOn] = []
        # Cancelled while waiting (a drain): its delivery did not run the task.
        self.cut_while_waiting = False

    @property
    def reason(self) -> str:
        """What it waits on: what the latest of its waits going on that says one says."""
        return next((w.reason for w in reversed(self._waits) if w.reason), "")

    @contextlib.contextmanager
    def waiting(self, reason: str = "") -> Iterator[_WaitingOn]:
        # try/finally: a wait cancelled (drain, the run-time budget) leaves the count exact.
        wait = _WaitingOn(reason)
        self._waits.append(wait)
        if len(self._waits) == 1:
            self._worker.handlers += 1
            self._worker.waiting.add(self)
        try:
            yield wait
        except asyncio.CancelledError:
            self.cut_while_waiting = True
            raise
        finally:
            self._waits.remove(wait)
            if not self._waits:
                self._worker.handlers -= 1
                self._worker.waiting.discard(self)


# The running handler's outage waits (one per handler task; tasks it starts share it).
_handler_waits: contextvars.ContextVar[_HandlerWaits | None] = contextvars.ContextVar(
    "handler_waits", default=None
)


@contextlib.contextmanager
def waiting_on_dependency(reason: str = "") -> Iterator[_WaitingOn]:
    """The running handler counts as waiting on a dependency for the whole block (the
    worker's heartbeat says so): its outage, or its quota (the model's rate limits), which
    more pods would wait on too. An outage episode is its calls tried again as well as its sleeps: a
    dependency that answers by timing out holds a retried call as long as a backoff, and
    counting only the sleeps read such a pool as half waiting, half working. `reason` is
    what it waits on, for the heartbeat (empty: what an outer wait says, if any); the block
    may change it (`.reason`) as it learns more."""
    waits = _handler_waits.get()
    if waits is None:  # outside a Worker's handler (a service's own loop): nobody to tell
        yield _WaitingOn(reason)
        return
    with waits.waiting(reason) as wait:
        yield wait


def _run_deadline() -> float | None:
    """When the running message's run-time budget ends (loop time), or None."""
    budget = _run_budget.get()
    return budget.when() if budget is not None else None


def _not_running(seconds: float) -> None:
    """The running message's run-time budget extended by `seconds` spent on an outage, since
    waiting for a dependency is not the task running long."""
    budget = _run_budget.get()
    if budget is not None and (when := budget.when()) is not None:
        budget.reschedule(when + seconds)


async def wait_out(delay: float) -> None:
    """Sleep `delay` seconds of an outage; the running message's run-time budget is extended
    by as much. The handler counts as waiting meanwhile (the worker's heartbeat says so)."""
    _not_running(delay)
    with waiting_on_dependency():
        await asyncio.sleep(delay)


async def outlast(
    call: Callable[[], Awaitable[T]],
    *,
    is_down: Callable[[BaseException], bool],
    what: str,
    backoff: Backoff | None = None,
    why: Callable[[BaseException], str] | None = None,
    excuse_failed_calls: bool = False,
) -> T:
    """`call()`, tried again with backoff for as long as it fails with an outage (`is_down`);
    the sleeps between count against the run time no more than the outage's own time does,
    and with `excuse_failed_calls` neither do the calls that failed so; from its first such
    failure to the end, the handler counts as waiting (`outage`), on `what`, or on
    `what: why(failure)` when `why` says more (its words replace the failure's own in each
    retry's log line: the caller has said the rest once).

    `excuse_failed_calls` is for a call whose failures were checked to be the dependency's
    (the model's, by its health probe): a dependency that answers by timing out (the model's
    service stalled, 120 s a call) otherwise used up the maximum run time in calls tried again
    and failed the task after all. Not by default: a call that times out for this message
    alone (a report too big to store within its deadline) would then be retried for ever,
    where the run time releases it to its attempts and, in the end, a dead letter."""
    backoff = backoff or Backoff()
    waiting: _WaitingOn | None = None
    with contextlib.ExitStack() as episode:
        while True:
            started, deadline = time.monotonic(), _run_deadline()
            try:
                return await call()
            except Exception as exc:
                if not is_down(exc):
                    raise
                if excuse_failed_calls:
                    # Less what the call's own outages were excused already (a nested outlast:
                    # the shared quota's turn waiting out NATS).
                    moved = (_run_deadline() or 0.0) - (deadline or 0.0)
                    _not_running(max(0.0, time.monotonic() - started - moved))
                said = why(exc) if why is not None else ""
                reason = f"{what}: {said}" if said else what
                if waiting is None:  # the episode's first failure
                    waiting = episode.enter_context(waiting_on_dependency(reason))
                waiting.reason = reason  # a 503, then a rejected key: the latest
                delay = backoff.next()
                log.warning(
                    "%s is unavailable (%s); trying again in %.1f s", what, said or exc, delay
                )
                await wait_out(delay)


class Worker:
    """Pulls from one durable consumer and runs `handler` with bounded concurrency.

    `run()` returns after `stop()`: fetching stops at once, in-flight messages get
    `grace_seconds` to finish, and whatever is still running is nak'ed so another
    worker picks it up. A handler running longer than `max_run_seconds` (outage waits
    excluded) is cancelled and its message released, so a hung call cannot hold a message
    (and a slot) for ever.
    """

    def __init__(
        self,
        *,
        js: JetStreamContext,
        spec: QueueSpec,
        handler: Handler,
        concurrency: int,
        grace_seconds: float,
        max_run_seconds: float = 1800.0,
        nc: NatsClient | None = None,
        pod: str = "",
    ) -> None:
        self._nc = nc
        self._pod = pod or socket.gethostname()
        self._js = js
        self._spec = spec
        self._handler = handler
        self._concurrency = max(1, concurrency)
        self._grace = grace_seconds
        self._max_run = max_run_seconds
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._inflight: dict[asyncio.Task[None], Msg] = {}
        self._outage_waits = _OutageWaits()
        self._waiting_for_slot = False
        self._last_pull = time.monotonic()
        self.processed = 0
        # A fair queue is pulled lane by lane (bytereview.core.fair_pull), not bound.
        self._fair = FairPuller(nc=nc or js._nc, js=js, spec=spec) if spec.fair else None

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def waiting(self) -> int:
        """In-flight messages whose handler is waiting on a dependency now (its outage, or
        its quota)."""
        return self._outage_waits.handlers

    @property
    def waiting_on(self) -> list[str]:
        """What those handlers wait on, each said once."""
        return self._outage_waits.reasons()

    def stop(self) -> None:
        self._stopping.set()

    def pull_stalled_for(self) -> float:
        """Seconds since the fetch loop last pulled although a slot was free; 0 while it pulls
        or while every slot is busy (busy slots are bounded by the maximum run time)."""
        if self._waiting_for_slot:
            return 0.0
        return max(0.0, time.monotonic() - self._last_pull)

    async def run(self) -> None:
        sub = None if self._fair else await self._bind()
        if sub is None and self._fair is None:
            return
        load = asyncio.create_task(self._publish_load())
        backoff = Backoff()
        try:
            while not self._stopping.is_set():
                # Wait for a free slot, or for stop(): a full worker must still drain on SIGTERM.
                if not await self._wait_for_free_slot():
                    break
                self._last_pull = time.monotonic()
                try:
                    msgs = await self._fetch(sub, self._concurrency - len(self._inflight))
                except Exception as exc:
                    # NATS restarting, a JetStream API error: the loop must survive it, or the
                    # process would serve on without pulling (#17, the wedge).
                    delay = backoff.next()
                    log.warning("fetch failed (%s); pulling again in %.1f s", exc, delay)
                    await self._sleep_unless_stopped(delay)
                    continue
                backoff.reset()
                self._last_pull = time.monotonic()
                # nats-py hands over messages a timed-out fetch left behind too, so this can
                # be more than asked for: start them all now, so in-progress acks cover them.
                for msg in msgs:
                    task = asyncio.create_task(self._process(msg))
                    self._inflight[task] = msg
                    task.add_done_callback(self._done)
        finally:
            await self._drain()
            load.cancel()
            if self._fair is not None:
                await self._fair.close()
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _bind(self) -> JetStreamContext.PullSubscription | None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                return await self._js.pull_subscribe_bind(
                    self._spec.durable, stream=self._spec.stream
                )
            except Exception as exc:
                delay = backoff.next()
                log.warning("cannot bind (%s); again in %.1f s", exc, delay)
                await self._sleep_unless_stopped(delay)
        return None

    async def _sleep_unless_stopped(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stopping.wait()

    async def _publish_load(self) -> None:
        """Publish this pod's in-flight count, so the autoscaler removes idle pods first, and
        how many of them wait out an outage, so it adds no pods that would wait too."""
        if self._nc is None:
            return
        subject = load_beats.subject(self._spec.durable, self._pod)
        while True:
            beat = load_beats.LoadBeat(
                self._spec.durable,
                self._pod,
                self.inflight,
                waiting=self.waiting,
                waiting_on=tuple(self.waiting_on),
            )
            payload = load_beats.encode(beat)
            with contextlib.suppress(Exception):
                await self._nc.publish(subject, payload)
            await asyncio.sleep(2)

    async def _wait_for_free_slot(self) -> bool:
        while len(self._inflight) >= self._concurrency and not self._stopping.is_set():
            self._waiting_for_slot = True
            self._slot_freed.clear()
            freed = asyncio.create_task(self._slot_freed.wait())
            stop = asyncio.create_task(self._stopping.wait())
            try:
                await asyncio.wait({freed, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                freed.cancel()
                stop.cancel()
        if self._waiting_for_slot:
            self._last_pull = time.monotonic()  # the stall clock starts when a slot frees
            self._waiting_for_slot = False
        return not self._stopping.is_set()

    async def _fetch(self, sub: JetStreamContext.PullSubscription | None, batch: int) -> list[Msg]:
        if self._fair is not None:
            held = [m.subject for m in self._inflight.values()]
            pulling = self._fair.fetch(max(1, batch), held, wait=FETCH_SECONDS)
        else:
            assert sub is not None
            pulling = sub.fetch(max(1, batch), timeout=FETCH_SECONDS)
        fetch = asyncio.create_task(pulling)
        stop = asyncio.create_task(self._stopping.wait())
        # The fetch ends by itself after FETCH_SECONDS; the margin guards against a fetch
        # that never returns (it would stop the loop pulling).
        done, _ = await asyncio.wait(
            {fetch, stop}, timeout=FETCH_SECONDS + 10, return_when=asyncio.FIRST_COMPLETED
        )
        stop.cancel()
        if fetch not in done:
            fetch.cancel()
            with contextlib.suppress(BaseException):
                await fetch
            if self._stopping.is_set():
                return []
            raise TimeoutError("a fetch did not return")
        try:
            return fetch.result()
        except (TimeoutError, nats.errors.TimeoutError):
            return []

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._slot_freed.set()

    async def _process(self, msg: Msg) -> None:
        meta = msg.metadata
        delivery = Delivery(
            data=msg.data,
            subject=msg.subject,
            attempt=_count(msg.headers, DELIVERIES_BEFORE) + int(meta.num_delivered or 1),
            max_deliver=self._spec.max_deliver,
            released=_count(msg.headers, RELEASED),
        )
        waits = _HandlerWaits(self._outage_waits)
        keep_alive = asyncio.create_task(self._ack_in_progress(msg))
        try:
            await self._run_within_budget(delivery, waits)
        except RetryLater as exc:
            delay = exc.delay if exc.delay is not None else self._backoff(delivery.attempt)
            log.warning("retry in %.0f s (attempt %d): %s", delay, delivery.attempt, exc)
            await self._settle(msg.nak(delay=delay))
        except Permanent as exc:
            log.warning("permanent failure: %s", exc)
            await self._settle(msg.term())
        except Superseded as exc:
            log.warning("left to a later delivery: %s", exc)
        except asyncio.CancelledError:
            # Drained. A handler that was waiting out a dependency did not run the task: its
            # message is put back as a copy that says so, as a nak would have used an attempt
            # (a key rotated by a rollout, during an outage, cost every held task one).
            if not (waits.cut_while_waiting and await self._requeue(msg, delivery)):
                with contextlib.suppress(Exception):
                    await msg.nak()
            raise
        except Exception:
            log.exception("handler failed (attempt %d)", delivery.attempt)
            if delivery.is_last_attempt:
                # No nak: when the ack wait runs out JetStream gives up and publishes a
                # MAX_DELIVERIES advisory, which the jobs service records as a dead letter.
                return
            await self._settle(msg.nak(delay=self._backoff(delivery.attempt)))
        else:
            await self._settle(msg.ack())
            self.processed += 1
        finally:
            keep_alive.cancel()

    async def _requeue(self, msg: Msg, delivery: Delivery) -> bool:
        """Put `msg` back on its subject as a copy that counts `delivery` released, then ack
        it; False (nothing done) when the copy cannot be stored. The copy is published
        first: a crash between the two leaves two messages of one task, which BeginTask and
        the idempotent reports make harmless, never none."""
        headers = {
            DELIVERIES_BEFORE: str(delivery.attempt),
            RELEASED: str(delivery.released + 1),
        }
        try:
            await self._js.publish(
                msg.subject, msg.data, headers=headers, stream=self._spec.stream, timeout=5
            )
        except Exception as exc:
            log.warning("could not put a drained message back (%s); released instead", exc)
            return False
        await self._settle(msg.ack())
        log.info("put back a message whose handler was waiting (attempt %d)", delivery.attempt)
        return True

    async def _run_within_budget(self, delivery: Delivery, waits: _HandlerWaits) -> None:
        """The handler, again in place while a dependency is down, within the maximum run
        time; running past it raises TimeoutError (a failure of the task)."""
        backoff = Backoff()
        budget = asyncio.timeout(self._max_run)
        try:
            async with budget:
                token = _run_budget.set(budget)
                try:
                    with self._outage_waits.handler(waits), contextlib.ExitStack() as episode:
                        down = False
                        while True:
                            try:
                                await self._handler(delivery)
                                return
                            except DependencyDown as exc:
                                if not down:  # waiting from now until the handler is done
                                    down = True
                                    episode.enter_context(waiting_on_dependency("a dependency"))
                                delay = backoff.next()
                                log.warning("dependency down (%s); again in %.1f s", exc, delay)
                                await wait_out(delay)
                finally:
                    _run_budget.reset(token)
        except TimeoutError as exc:
            if budget.expired():
                raise RanTooLong(f"the handler ran longer than {self._max_run:.0f} s") from exc
            raise

    @staticmethod
    async def _settle(settle: Awaitable[None]) -> None:
        # NATS down: the ack is lost, JetStream redelivers after AckWait, and every report
        # being idempotent makes that harmless.
        try:
            await settle
        except Exception as exc:
            log.warning("could not settle a message (%s); it will be redelivered", exc)

    def _backoff(self, attempt: int) -> float:
        steps = self._spec.backoff_seconds
        return float(steps[min(attempt, len(steps)) - 1]) if steps else 0.0

    async def _ack_in_progress(self, msg: Msg) -> None:
        """Renew the message's AckWait while its handler runs (at a third of it)."""
        interval = max(self._spec.ack_wait_seconds / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _drain(self) -> None:
        if not self._inflight:
            return
        log.info("draining %d in-flight message(s)", len(self._inflight))
        _, pending = await asyncio.wait(set(self._inflight), timeout=self._grace)
        for task in pending:
            task.cancel()  # _process naks on cancellation
        if pending:
            await asyncio.wait(pending, timeout=5)
