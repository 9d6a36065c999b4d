"""Engines, sessions and migrations for PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Execution option naming how a SQLite transaction begins: IMMEDIATE (default), DEFERRED,
# or STATEMENT (no transaction: every statement on its own).
SQLITE_BEGIN = "sqlite_begin"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets readers run beside the one writer; FKs are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # SQLAlchemy, not the driver, decides where transactions begin (see below).
    dbapi_conn.isolation_level = None


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    if is_sqlite(url):
        db_path = make_url(url).database
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            # SQLite ignores SELECT ... FOR UPDATE, and a deferred transaction reads a snapshot
            # that a concurrent writer can make stale (two workers reporting on one job both
            # took event sequence N+1). IMMEDIATE takes the write lock up front, so writing
            # transactions run one after another, as row locks make them on PostgreSQL.
            # Read-only sessions ask for DEFERRED (JobsContext.reading) and never wait.
            # STATEMENT: no BEGIN at all, so each statement reads its own snapshot (SQLite's
            # autocommit); it saves a round trip to the driver's thread on hot reads.
            mode = conn.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
            if mode != "STATEMENT":
                conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
    # An INSERT of many rows (results, their versions, review items, tasks) is otherwise an
    # executemany, which asyncpg runs as one statement per row: reports of a 10,000-task job
    # inserted 80,000 rows statement by statement inside transactions holding the job's row
    # lock. SQLAlchemy's "insertmanyvalues" sends them as multi-row INSERTs (1,000 a page),
    # as it already does for INSERTs with RETURNING.
    engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


@dataclass(frozen=True)
class SyncReads:
    """Sessions on SQLite's plain sqlite3 driver, and the threads that read with them.

    aiosqlite sends every cursor call to its own thread, four hops a statement, and on a
    small machine a hop costs more CPU than the query (~0.14 ms against ~0.01 ms). A whole
    read done by the sync driver in one hop costs a third less CPU. The threads are their
    own, so reads never queue behind the service's other blocking work (storage calls for a
    10,000-file job go through the default executor).
    """

    sessions: sessionmaker[Session]
    threads: ThreadPoolExecutor

    def close(self) -> None:
        self.threads.shutdown(wait=True)
        self.sessions.kw["bind"].dispose()


def sync_reads(url: str, *, threads: int = 4) -> SyncReads | None:
    """For SQLite, a SyncReads (no BEGIN: each statement reads its own snapshot); None for
    other databases, whose async drivers need no threads."""
    if not is_sqlite(url):
        return None
    sync_url = make_url(url).set(drivername="sqlite+pysqlite")
    engine = sa_create_engine(sync_url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return SyncReads(
        sessionmaker(engine, expire_on_commit=False),
        ThreadPoolExecutor(threads, thread_name_prefix="sqlite-read"),
    )


class NotMigrated(Exception):
    """The database holds no ByteReview schema (a wrong URL, or one never migrated)."""


async def check_migrated(url: str) -> None:
    """NotMigrated, saying what to do, unless `url`'s database was migrated (alembic). A
    SQLite file that does not exist is not created: `bytereview cleanup` run outside a data
    directory made an empty .bytereview/bytereview.db, then failed on 'no such table' with
    a traceback of a hundred lines."""
    parsed = make_url(url)
    hint = "set BYTEREVIEW_DATABASE_URL to ByteReview's database, or run `bytereview migrate`"
    shown = parsed.render_as_string(hide_password=True)
    # A stat of a local file, once per command: not worth a thread.
    if is_sqlite(url) and parsed.database and not Path(parsed.database).exists():  # noqa: ASYNC240
        raise NotMigrated(f"no database at {shown}; {hint}")
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda sync: sa_inspect(sync).has_table("alembic_version"))
    finally:
        await engine.dispose()
    if not found:
        raise NotMigrated(f"the database at {shown} has no ByteReview tables; {hint}")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (blocking; runs its own event loop, so call it from a thread)."""
    from alembic import command

    command.upgrade(_alembic_config(url), revision)


async def upgrade_async(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
