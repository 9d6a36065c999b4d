"""Alembic environment: runs migrations through the async engine on either database."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import event
from sqlalchemy.engine import Connection

from services.jobs.store.db import create_engine, is_sqlite
from services.jobs.store.models import Base

target_metadata = Base.metadata


def _foreign_keys_off(dbapi_conn: Any, _record: Any) -> None:
    # Batch mode copies a table and drops the old one; with foreign keys on, that DROP deletes
    # the rows of every table that cascades from it (a job's tasks and results). SQLite's own
    # advice for schema changes is to turn them off; this runs when the connection opens,
    # outside any transaction, where the pragma takes effect.
    dbapi_conn.execute("PRAGMA foreign_keys=OFF")


def _run(connection: Connection) -> None:
    url = context.config.get_main_option("sqlalchemy.url") or ""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        render_as_batch=is_sqlite(url),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or ""
    engine = create_engine(url)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _foreign_keys_off)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")
asyncio.run(_main())
