"""Reading database errors (services/jobs/store/errors.py) off real PostgreSQL errors."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from services.jobs.store import db
from services.jobs.store.errors import deadlocked


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_lock_cycle_is_told_from_other_errors(database_url: str) -> None:
    engine = db.create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE cycle (id int PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO cycle VALUES (1), (2)"))
        both_hold_one = asyncio.Barrier(2)

        async def lock(first: int, then: int) -> None:
            async with engine.begin() as conn:
                await conn.execute(text("SET LOCAL deadlock_timeout = '100ms'"))
                await conn.execute(text(f"SELECT * FROM cycle WHERE id = {first} FOR UPDATE"))
                await both_hold_one.wait()
                await conn.execute(text(f"SELECT * FROM cycle WHERE id = {then} FOR UPDATE"))

        outcomes = await asyncio.gather(lock(1, 2), lock(2, 1), return_exceptions=True)
        [broken] = [o for o in outcomes if isinstance(o, BaseException)]
        assert isinstance(broken, DBAPIError)
        assert deadlocked(broken)

        with pytest.raises(IntegrityError) as duplicate:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO cycle VALUES (1)"))
        assert not deadlocked(duplicate.value)
        assert not deadlocked(RuntimeError("not a database error"))
    finally:
        await engine.dispose()
