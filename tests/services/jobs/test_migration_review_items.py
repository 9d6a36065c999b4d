"""Migration 0009_review_items upgrades a database holding assessed results in place: their
values not reviewed yet fill the review queue's table, and the queue lists them as before
(#16)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from services.jobs import prepare_database
from services.jobs.store import db as jobs_db
from tests.conftest import USER
from tests.servers import PostgresServer

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub

USER_ID, JOB = uuid.uuid4().hex, uuid.uuid4().hex
TASKS = [uuid.uuid4().hex for _ in range(3)]
RESULTS = [uuid.uuid4().hex for _ in range(3)]
THRESHOLD = 0.8


def _assessment(confidence: float, verified: bool, *, reviewed: bool = False) -> dict[str, Any]:
    needs = not reviewed and (confidence < THRESHOLD or not verified)
    return {
        "confidence": confidence,
        "verified": verified,
        "reviewed": reviewed,
        "needs_review": needs,
    }


# Per result: values and assessments as the service stored them before 0009.
STORED = [
    (
        {"number": "A-1", "total": "10.00"},
        {"number": _assessment(0.95, True), "total": _assessment(0.3, True)},
    ),
    (
        {"number": "B-2", "total": "20.00"},
        {"number": _assessment(0.9, False), "total": _assessment(0.2, True, reviewed=True)},
    ),
    ({"number": "C-3", "total": None}, {"number": _assessment(0.99, True)}),
]


def _before_0009() -> str:
    script = ScriptDirectory(str(jobs_db.MIGRATIONS))
    down = script.get_revision("0009_review_items").down_revision
    assert isinstance(down, str)
    return down


async def _fill(url: str) -> None:
    now = dt.datetime.now(dt.UTC)
    needing = [sum(a["needs_review"] for a in assessments.values()) for _, assessments in STORED]
    statements: list[tuple[str, dict[str, Any]]] = [
        *(
            (
                "INSERT INTO data_types (id, display_name, json_type, format, description,"
                " position) VALUES (:id, :id, 'string', '', '', :position)",
                {"id": data_type, "position": position},
            )
            for position, data_type in enumerate(["text", "currency"])
        ),
        (
            "INSERT INTO users (id, subject, email, display_name, created_at, last_seen_at)"
            " VALUES (:id, 'dev', '', '', :now, :now)",
            {"id": USER_ID},
        ),
        (
            "INSERT INTO extraction_jobs (id, user_id, display_name, status, persist_data,"
            " task_mode, configured_fields, event_sequence, files_total, files_ready,"
            " files_failed, tasks_total, tasks_succeeded, tasks_failed, created_at, updated_at,"
            " values_needing_review) VALUES (:id, :user, 'Old job', 'COMPLETED', true,"
            " 'TASK_MODE_INDIVIDUAL', '[]', 0, 0, 0, 0, 3, 3, 0, :now, :now, :needing)",
            {"id": JOB, "user": USER_ID, "needing": sum(needing)},
        ),
        *(
            (
                "INSERT INTO job_fields (id, job_id, position, name, data_type_id, instruction)"
                " VALUES (:id, :job, :position, :name, :type, '')",
                {
                    "id": uuid.uuid4().hex,
                    "job": JOB,
                    "position": position,
                    "name": name,
                    "type": data_type,
                },
            )
            for position, (name, data_type) in enumerate(
                [("number", "text"), ("total", "currency")]
            )
        ),
    ]
    for position, (task, result, (values, assessments)) in enumerate(
        zip(TASKS, RESULTS, STORED, strict=True)
    ):
        statements += [
            (
                "INSERT INTO extraction_tasks (id, job_id, position, mode, folder, status,"
                " attempts, generation, last_error, created_at) VALUES (:id, :job, :position,"
                " 'TASK_MODE_INDIVIDUAL', '', 'SUCCEEDED', 1, 0, '', :now)",
                {"id": task, "job": JOB, "position": position},
            ),
            (
                'INSERT INTO extraction_results (id, job_id, task_id, position, "values",'
                " value_sources, edited, input_tokens, output_tokens, extractor, created_at,"
                " updated_at, assessments, review_count) VALUES (:id, :job, :task, :position,"
                " :values, '{}', false, 0, 0, 'offline', :now, :now, :assessments, :count)",
                {
                    "id": result,
                    "job": JOB,
                    "task": task,
                    "position": position,
                    "values": json.dumps(values),
                    "assessments": json.dumps(assessments),
                    "count": needing[position],
                },
            ),
        ]
    engine = jobs_db.create_engine(url)
    try:
        async with engine.begin() as conn:
            for sql, params in statements:
                await conn.execute(text(sql), {"now": now, **params})
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database at the revision before 0009, holding assessed results, upgraded to head as
    an install would be."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"old_{uuid.uuid4().hex[:12]}")
    jobs_db.upgrade(url, _before_0009())
    asyncio.run(_fill(url))
    asyncio.run(prepare_database(Settings(env="dev", database_url=url)))
    return url


@pytest.mark.settings(review_confidence_threshold=THRESHOLD)
async def test_existing_assessments_fill_the_review_queue(job_stub: JobStub) -> None:
    job = f"jobs/{JOB}"

    async def names(**kwargs: Any) -> tuple[list[str], int]:
        got = await job_stub.ListReviewItems(
            jobs_pb.ListReviewItemsRequest(parent=job, **kwargs), metadata=USER
        )
        return [i.name for i in got.review_items], got.total_size

    def value(index: int, field: str) -> str:
        return f"{job}/results/{RESULTS[index]}/values/{field}"

    # The total at 0.3 (money) first, then the unverified number; the reviewed total and
    # the trusted values stay out.
    flagged = [value(0, "total"), value(1, "number")]
    assert await names() == (flagged, 2)
    assert await names(confidence_below=0.96) == ([*flagged, value(0, "number")], 3)
    await job_stub.AcceptReviewItem(
        jobs_pb.AcceptReviewItemRequest(name=value(0, "total")), metadata=USER
    )
    assert await names() == ([value(1, "number")], 1)
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.counters.values_needing_review == 1
