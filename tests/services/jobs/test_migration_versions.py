"""Migration 0003_versions upgrades a database holding data from 0001 in place: results and
templates get their first versions, and the new API works on them (#16)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format, struct_pb2
from sqlalchemy import text

from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs import prepare_database
from services.jobs.store import db as jobs_db
from tests.conftest import USER
from tests.servers import PostgresServer

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub

USER_ID, TEMPLATE, JOB, TASK, RESULT = (uuid.uuid4().hex for _ in range(5))
VALUES = {"number": "A-1", "total": "10.00"}


async def _fill_0001(url: str) -> None:
    """Rows as a 0001 installation holds them (its columns only)."""
    now = dt.datetime.now(dt.UTC)
    engine = jobs_db.create_engine(url)
    statements: list[tuple[str, dict[str, Any]]] = [
        (
            "INSERT INTO data_types (id, display_name, json_type, format, description, position)"
            " VALUES ('text', 'Text', 'string', '', '', 0)",
            {},
        ),
        (
            "INSERT INTO users (id, subject, email, display_name, created_at, last_seen_at)"
            " VALUES (:id, 'dev', '', '', :now, :now)",
            {"id": USER_ID},
        ),
        (
            "INSERT INTO templates (id, user_id, display_name, description, created_at,"
            " updated_at) VALUES (:id, :user, 'Old', '', :now, :now)",
            {"id": TEMPLATE, "user": USER_ID},
        ),
        *(
            (
                "INSERT INTO template_fields (id, template_id, position, name, data_type_id,"
                " instruction) VALUES (:id, :template, :position, :name, 'text', :instruction)",
                {
                    "id": uuid.uuid4().hex,
                    "template": TEMPLATE,
                    "position": position,
                    "name": name,
                    "instruction": f"the {name}",
                },
            )
            for position, name in enumerate(["number", "total"])
        ),
        (
            "INSERT INTO extraction_jobs (id, user_id, display_name, status, persist_data,"
            " task_mode, configured_fields, event_sequence, files_total, files_ready,"
            " files_failed, tasks_total, tasks_succeeded, tasks_failed, created_at, updated_at,"
            " template_id) VALUES (:id, :user, 'Old job', 'COMPLETED', true,"
            " 'TASK_MODE_INDIVIDUAL', '[]', 0, 0, 0, 0, 1, 1, 0, :now, :now, :template)",
            {"id": JOB, "user": USER_ID, "template": TEMPLATE},
        ),
        *(
            (
                "INSERT INTO job_fields (id, job_id, position, name, data_type_id, instruction)"
                " VALUES (:id, :job, :position, :name, 'text', '')",
                {"id": uuid.uuid4().hex, "job": JOB, "position": position, "name": name},
            )
            for position, name in enumerate(["number", "total"])
        ),
        (
            "INSERT INTO extraction_tasks (id, job_id, position, mode, folder, status, attempts,"
            " generation, last_error, created_at) VALUES (:id, :job, 0, 'TASK_MODE_INDIVIDUAL',"
            " '', 'SUCCEEDED', 1, 0, '', :now)",
            {"id": TASK, "job": JOB},
        ),
        (
            'INSERT INTO extraction_results (id, job_id, task_id, position, "values",'
            " value_sources, edited, input_tokens, output_tokens, extractor, created_at,"
            " updated_at) VALUES (:id, :job, :task, 0, :values, '{}', true, 0, 0, 'offline',"
            " :now, :now)",
            {"id": RESULT, "job": JOB, "task": TASK, "values": json.dumps(VALUES)},
        ),
    ]
    try:
        async with engine.begin() as conn:
            for sql, params in statements:
                await conn.execute(text(sql), {"now": now, **params})
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database migrated to 0001 and filled, then upgraded to head as an install would be."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"old_{uuid.uuid4().hex[:12]}")
    jobs_db.upgrade(url, "0001")
    asyncio.run(_fill_0001(url))
    asyncio.run(prepare_database(Settings(env="dev", database_url=url)))
    return url


async def test_an_0001_database_gets_first_versions(
    job_stub: JobStub, channel: grpc.aio.Channel
) -> None:
    result = f"jobs/{JOB}/results/{RESULT}"
    (first,) = (
        await job_stub.ListResultVersions(
            jobs_pb.ListResultVersionsRequest(parent=result), metadata=USER
        )
    ).versions
    assert first.version == 1
    assert first.kind == pb.ResultVersion.IMPORTED
    assert json_format.MessageToDict(first.values) == VALUES
    values = struct_pb2.Struct()
    values.update({"total": "11.00"})
    updated = await job_stub.UpdateResult(
        jobs_pb.UpdateResultRequest(
            result=pb.Result(name=result, values=values),
            update_mask=field_mask_pb2.FieldMask(paths=["values.total"]),
        ),
        metadata=USER,
    )
    assert updated.version == 2

    templates = jobs_grpc.TemplateServiceStub(channel)
    template = await templates.GetTemplate(
        jobs_pb.GetTemplateRequest(name=f"templates/{TEMPLATE}"), metadata=USER
    )
    assert template.current_version == f"templates/{TEMPLATE}/versions/1"
    (version,) = (
        await templates.ListTemplateVersions(
            jobs_pb.ListTemplateVersionsRequest(parent=template.name), metadata=USER
        )
    ).versions
    assert [(f.name, f.instruction) for f in version.fields] == [
        ("number", "the number"),
        ("total", "the total"),
    ]
    job = await job_stub.GetJob(jobs_pb.GetJobRequest(name=f"jobs/{JOB}"), metadata=USER)
    assert job.template_version == ""  # which version an old job used is not known
