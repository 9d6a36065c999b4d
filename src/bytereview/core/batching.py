"""Many concurrent calls of one kind made as one batched call (the worker's reports).

Each handler still awaits *its own* answer: it acks its message only once its report is in,
so batching changes the number of round trips and transactions, not what a crash loses.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class Batcher(Generic[Item, Answer]):
    """Gathers the items submitted while the loop runs, and while a call is in flight, into
    one call of `call(items) -> answers` (one answer per item, in order).

    Nothing waits for a batch to fill: the first call goes out on the next turn of the event
    loop (so the messages of one fetch, started together, go together), and what arrives
    while it is in flight goes in the next. At most `max_batch` items per call, and with
    `weight`, at most `max_weight` of it (an item heavier than that goes alone): a message
    over gRPC's size limit would fail every item in it.
    An error of the call is every item's error; a submitter that is cancelled leaves the
    call alone (its item may still be applied: reports are idempotent).
    """

    def __init__(
        self,
        call: Callable[[list[Item]], Awaitable[Sequence[Answer]]],
        *,
        max_batch: int,
        max_in_flight: int = 1,
        weight: Callable[[Item], int] | None = None,
        max_weight: int = 0,
    ) -> None:
        self._call = call
        self._max_batch = max(1, max_batch)
        self._weight = weight
        self._max_weight = max_weight
        self._max_in_flight = max(1, max_in_flight)
        self._waiting: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._scheduled = False
        self.calls = 0

    async def submit(self, item: Item) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)
        return await future

    def _start(self) -> None:
        self._scheduled = False
        while self._waiting and len(self._in_flight) < self._max_in_flight:
            taken = self._taken()
            batch = self._waiting[:taken]
            del self._waiting[:taken]
            # The batch runs in a context of its own: no submitter's run-time budget
            # (worker_runtime) belongs to it; each submitter waits out outages itself.
            task = asyncio.create_task(self._run(batch), context=contextvars.Context())
            self._in_flight.add(task)

    def _taken(self) -> int:
        """How many of the waiting items the next call takes (one at least)."""
        count = min(len(self._waiting), self._max_batch)
        if self._weight is None:
            return count
        total = 0
        for n, (item, _) in enumerate(self._waiting[:count]):
            total += self._weight(item)
            if total > self._max_weight and n > 0:
                return n
        return count

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Answer]]]) -> None:
        try:
            self.calls += 1
            answers = await self._call([item for item, _ in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers to a batch of {len(batch)}")
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        finally:
            if (me := asyncio.current_task()) is not None:
                self._in_flight.discard(me)
            if self._waiting and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._start)
