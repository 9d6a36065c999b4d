"""What a database error means to the code that can do something about it."""

from __future__ import annotations

# PostgreSQL's SQLSTATE for "deadlock detected": it aborted this transaction to break a
# cycle of row locks; run again, the transaction will most likely go through.
DEADLOCK_DETECTED = "40P01"


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
