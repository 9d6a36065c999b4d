"""A page's cursor read to its end before a cancellation of its caller takes effect.

A call cancelled while it reads a page through a cursor (an export whose client went away,
a list call past its deadline) was cut inside the driver's fetch: SQLAlchemy then takes the
connection for broken and invalidates it (CancelledError is an exit exception to it), and
closing the cursor after that logged `Error closing cursor` at ERROR with the driver's
traceback (aiosqlite: "Connection closed"), for a client that merely left. A page is
bounded (its LIMIT, PAGE_BYTES), so it is read to its end and its cursor closed, the
connection goes back to the pool whole, and the cancellation is raised right after.

A second cancellation cuts the read all the same: a database that stopped answering must
not hold a shutdown (which cancels again after its grace) for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def uncut(read: Coroutine[Any, Any, T]) -> T:
    """`read`'s result; if the caller is cancelled meanwhile, `read` still ends first (unless
    cancelled twice) and the cancellation is raised after it."""
    task = asyncio.ensure_future(read)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.done():
            raise  # the read itself was cancelled (its loop is closing): nothing to wait for
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # Cancelled again: the read is cut, and its unwinding awaited (a cancelled
            # driver call returns at once), so that the caller's own cleanup (closing the
            # session the read used) never runs beside it on the same connection.
            task.add_done_callback(_outcome_taken)
            task.cancel()
            await asyncio.wait([task])
        except Exception:  # noqa: S110
            pass  # the caller is gone: the read's own failure has nobody to go to
        raise


def _outcome_taken(task: asyncio.Future[Any]) -> None:
    # Taken so asyncio does not log a failure that ended a read nobody waits for any more.
    if not task.cancelled():
        task.exception()
