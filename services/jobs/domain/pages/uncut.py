"""A page's cursor read to its end before a cancellation of its caller takes effect.

A call cancelled while it reads a page through a cursor (an export whose client went away,
a list call past its deadline) was cut inside the driver's fetch: SQLAlchemy then takes the
connection for broken and invalidates it (CancelledError is an exit exception to it), and
closing the cursor after that logged `Error closing cursor` at ERROR with the driver's
traceback (aiosqlite: "Connection closed"), for a client that merely left. A page is
bounded (its LIMIT, PAGE_BYTES), so it is read to its end and its cursor closed, the
connection goes back to the pool whole, and the cancellation is raised right after.

A second cancellation cuts the read all the same, and so does a read still running
UNCUT_SECONDS after the first: a database that stopped answering must hold neither a
shutdown (which cancels again after its grace) nor a gone client's call, its connection and
the user's export slot, for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# A page read takes milliseconds; one still running this long after its caller left is
# waiting on a database that does not answer.
UNCUT_SECONDS = 10.0


async def uncut(read: Coroutine[Any, Any, T], *, limit: float = UNCUT_SECONDS) -> T:
    """`read`'s result; if the caller is cancelled meanwhile, `read` still ends first (unless
    cancelled twice, or still running `limit` seconds later) and the cancellation is raised
    after it."""
    task = asyncio.ensure_future(read)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.done():
            raise  # the read itself was cancelled (its loop is closing): nothing to wait for
        try:
            await asyncio.wait_for(asyncio.shield(task), limit)
        except (asyncio.CancelledError, TimeoutError):
            # Cancelled again, or too long: the read is cut, and its unwinding awaited (a
            # cancelled driver call returns at once), so that the caller's own cleanup
            # (closing the session the read used) never runs beside it on the same
            # connection; a further cancellation meanwhile is the one already being raised.
            task.add_done_callback(_outcome_taken)
            task.cancel()
            while not task.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([task])
        except Exception:  # noqa: S110
            pass  # the caller is gone: the read's own failure has nobody to go to
        raise


def _outcome_taken(task: asyncio.Future[Any]) -> None:
    # Taken so asyncio does not log a failure that ended a read nobody waits for any more.
    if not task.cancelled():
        task.exception()
