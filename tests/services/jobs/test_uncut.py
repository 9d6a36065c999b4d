"""`uncut`: a cancelled caller's page read ends before the cancellation takes effect, unless
it is cancelled again (a shutdown past its grace). The database side of it is tested on the
real service (tests/gateway/test_cancelled_exports.py)."""

from __future__ import annotations

import asyncio

import pytest

from services.jobs.domain.pages.uncut import uncut


async def endless_read(unwound: asyncio.Event, cleanup_seconds: float = 0.0) -> None:
    """A read that never ends by itself; cut, it cleans up (a driver's own work on the
    connection, `cleanup_seconds`) before `unwound` is set."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        await asyncio.sleep(cleanup_seconds)
        unwound.set()
        raise


async def test_a_cancelled_caller_waits_for_its_read_to_end() -> None:
    go_on, ended = asyncio.Event(), asyncio.Event()

    async def read() -> int:
        await go_on.wait()
        ended.set()
        return 1

    caller = asyncio.ensure_future(uncut(read()))
    await asyncio.sleep(0.01)
    caller.cancel()
    await asyncio.sleep(0.01)
    assert not caller.done()  # still waiting for the read
    go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert ended.is_set()
    assert await uncut(read()) == 1  # and uncancelled, it is only the read


async def test_a_second_cancellation_cuts_the_read() -> None:
    cut = asyncio.Event()
    caller = asyncio.ensure_future(uncut(endless_read(cut, cleanup_seconds=0.05)))
    await asyncio.sleep(0.01)
    caller.cancel()
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    # Unwound before the caller goes on to close what the read used (its session).
    assert cut.is_set()


async def test_a_read_failing_after_its_caller_left_is_not_reported() -> None:
    go_on = asyncio.Event()

    async def read() -> None:
        await go_on.wait()
        raise RuntimeError("the database went away")

    caller = asyncio.ensure_future(uncut(read()))
    await asyncio.sleep(0.01)
    caller.cancel()
    go_on.set()
    # The cancellation, not the read's failure: nobody is left to take that.
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_a_read_still_running_past_its_limit_is_cut() -> None:
    """A database that stopped answering: the gone caller's read is cut `limit` after the
    cancellation, not waited for as long as the database is silent."""
    cut = asyncio.Event()
    caller = asyncio.ensure_future(uncut(endless_read(cut), limit=0.2))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(caller, timeout=5)
    assert cut.is_set()


async def test_a_third_cancellation_still_waits_for_the_read_to_unwind() -> None:
    unwound = asyncio.Event()
    caller = asyncio.ensure_future(uncut(endless_read(unwound, cleanup_seconds=0.1)))
    for _ in range(3):
        await asyncio.sleep(0.01)
        caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert unwound.is_set()
