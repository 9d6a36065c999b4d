"""What a database error means to the code that can do something about it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

T = TypeVar("T")

# PostgreSQL's SQLSTATE for "deadlock detected": it aborted this transaction to break a
# cycle of row locks; run again, the transaction will most likely go through.
DEADLOCK_DETECTED = "40P01"
# How many times in all `again_if_deadlocked` runs a transaction.
DEADLOCK_ATTEMPTS = 5


def deadlocked(error: BaseException) -> bool:
    """Whether `error` (a SQLAlchemy DBAPIError, or anything wrapping one) is PostgreSQL
    breaking a lock cycle. The SQLSTATE sits on the driver's exception, which SQLAlchemy keeps
    as `orig` and the asyncpg adapter chains as its cause."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if getattr(current, "sqlstate", None) == DEADLOCK_DETECTED:
            return True
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return False


async def again_if_deadlocked(run: Callable[[], Awaitable[T]]) -> T:
    """`run` (one whole transaction, rolled back when it fails) again when PostgreSQL aborted
    it to break a lock cycle, up to DEADLOCK_ATTEMPTS times in all: the caller then gets its
    answer rather than an INTERNAL error for a cycle it did not cause. Only for a whole
    transaction with no effect outside it (the jobs service's JobsContext.run_transaction):
    a re-run decides again from what is committed by then, never from half of a try."""
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            return await run()
        except DBAPIError as error:
            if not deadlocked(error) or attempt == DEADLOCK_ATTEMPTS:
                raise
    raise AssertionError("unreachable")
