"""Migration 0007_retry_marker upgrades a database in place: a job cancelled before it whose
open tasks are not all cancelled yet is marked "cancel", so TaskSettler (which reads only
marked jobs) still finishes it; every other job is marked with nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from services.jobs.store import db as jobs_db
from tests.servers import PostgresServer

USER_ID = uuid.uuid4().hex
# job id -> (its status, its tasks' statuses)
JOBS = {
    "cancelling": ("CANCELLED", ["CANCELLED", "QUEUED", "RUNNING"]),
    "cancelled": ("CANCELLED", ["CANCELLED", "CANCELLED"]),
    "failed": ("FAILED", ["FAILED", "FAILED"]),
}


async def _fill_0002(url: str) -> None:
    now = dt.datetime.now(dt.UTC)
    engine = jobs_db.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO users (id, subject, email, display_name, created_at,"
                    " last_seen_at) VALUES (:id, 'dev', '', '', :now, :now)"
                ),
                {"id": USER_ID, "now": now},
            )
            for job_id, (status, tasks) in JOBS.items():
                await conn.execute(
                    text(
                        "INSERT INTO extraction_jobs (id, user_id, display_name, status,"
                        " persist_data, task_mode, configured_fields, event_sequence,"
                        " files_total, files_ready, files_failed, tasks_total,"
                        " tasks_succeeded, tasks_failed, created_at, updated_at) VALUES"
                        " (:id, :user, '', :status, true, 'TASK_MODE_INDIVIDUAL', '[]', 0, 0,"
                        " 0, 0, :total, 0, 0, :now, :now)"
                    ),
                    {
                        "id": job_id,
                        "user": USER_ID,
                        "status": status,
                        "total": len(tasks),
                        "now": now,
                    },
                )
                for position, task_status in enumerate(tasks):
                    await conn.execute(
                        text(
                            "INSERT INTO extraction_tasks (id, job_id, position, mode, folder,"
                            " status, attempts, generation, last_error, created_at) VALUES"
                            " (:id, :job, :position, 'TASK_MODE_INDIVIDUAL', '', :status, 0,"
                            " 0, '', :now)"
                        ),
                        {
                            "id": uuid.uuid4().hex,
                            "job": job_id,
                            "position": position,
                            "status": task_status,
                            "now": now,
                        },
                    )
    finally:
        await engine.dispose()


async def _marks(url: str) -> dict[str, str]:
    engine = jobs_db.create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT id, settle_due FROM extraction_jobs"))
            return {job_id: due for job_id, due in rows.all()}
    finally:
        await engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_cancellation_under_way_is_marked_for_the_settler(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"old_{uuid.uuid4().hex[:12]}")
    jobs_db.upgrade(url, "0002_value_evidence")
    asyncio.run(_fill_0002(url))
    jobs_db.upgrade(url, "0007_retry_marker")
    assert asyncio.run(_marks(url)) == {"cancelling": "cancel", "cancelled": "", "failed": ""}
