"""The rest of the jobs service's RPCs, on both databases: templates, users and API keys,
results editing, export (large jobs too), watching, deletion, clean-up and metrics."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import threading
import time
import tracemalloc
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2
from openpyxl import load_workbook
from prometheus_client import REGISTRY
from sqlalchemy import insert, update

from bytereview.core import streams
from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs import RunningJobsService
from services.jobs.domain import Cleanup, metrics
from services.jobs.store import db as jobs_db
from services.jobs.store import models
from tests.conftest import USER
from tests.identity import IdentityProvider
from tests.services.jobs.helpers import WORKER, completed_job, ready_job, upload

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub


async def test_list_jobs_pages_totals_and_fields(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    started = await completed_job(job_stub, worker_stub, settings, files=1)
    names = [started]
    for i in range(4):
        created = await job_stub.CreateJob(
            jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=1)]),
            metadata=USER,
        )
        names.append(created.job.name)
        if i % 2:
            await job_stub.ConfigureJob(
                jobs_pb.ConfigureJobRequest(
                    name=created.job.name, fields=[pb.JobField(name=f"f{i}", data_type="text")]
                ),
                metadata=USER,
            )
    pages, token = [], ""
    while True:
        page = await job_stub.ListJobs(
            jobs_pb.ListJobsRequest(page_size=2, page_token=token), metadata=USER
        )
        assert page.total_size == 5
        pages.append(page)
        token = page.next_page_token
        if not token:
            break
    assert [len(p.jobs) for p in pages] == [2, 2, 1]
    listed = [job for p in pages for job in p.jobs]
    assert sorted(j.name for j in listed) == sorted(names)
    for job in listed:  # each job on a page carries the fields GetJob gives it
        alone = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job.name), metadata=USER)
        assert list(job.fields) == list(alone.fields)
        assert job == alone
    by_name = {j.name: j for j in listed}
    assert [f.name for f in by_name[started].fields] == ["number", "total"]
    assert sum(1 for j in listed if [f.name for f in j.fields] in (["f1"], ["f3"])) == 2
    completed = await job_stub.ListJobs(
        jobs_pb.ListJobsRequest(status=pb.Job.COMPLETED), metadata=USER
    )
    assert [j.name for j in completed.jobs] == [started]
    assert completed.total_size == 1
    # Jobs deleted between pages: a page past the end is empty and still knows the total.
    second = await job_stub.ListJobs(jobs_pb.ListJobsRequest(page_size=4), metadata=USER)
    for name in names[:3]:
        await job_stub.DeleteJob(jobs_pb.DeleteJobRequest(name=name), metadata=USER)
    past = await job_stub.ListJobs(
        jobs_pb.ListJobsRequest(page_size=4, page_token=second.next_page_token), metadata=USER
    )
    assert (list(past.jobs), past.total_size, past.next_page_token) == ([], 2, "")


async def test_reads_do_not_queue_behind_blocking_work(job_stub: JobStub) -> None:
    """GetJob/ListJobs answer while every default-executor thread is busy (on SQLite they
    read on threads of their own; elsewhere they need none)."""
    created = await job_stub.CreateJob(
        jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=1)]),
        metadata=USER,
    )
    release = threading.Event()
    loop = asyncio.get_running_loop()
    blockers = [loop.run_in_executor(None, release.wait) for _ in range(64)]
    try:
        async with asyncio.timeout(10):
            got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=created.job.name), metadata=USER)
            listed = await job_stub.ListJobs(jobs_pb.ListJobsRequest(), metadata=USER)
    finally:
        release.set()
        await asyncio.gather(*blockers)
    assert got.name == created.job.name
    assert [j.name for j in listed.jobs] == [created.job.name]


async def test_templates_crud(channel: grpc.aio.Channel, idp: IdentityProvider) -> None:
    stub = jobs_grpc.TemplateServiceStub(channel)
    fields = [
        pb.JobField(name="invoice_number", data_type="text", instruction="The number"),
        pb.JobField(name="total", data_type="currency"),
    ]
    created = await stub.CreateTemplate(
        jobs_pb.CreateTemplateRequest(template=pb.Template(display_name="Invoices", fields=fields)),
        metadata=USER,
    )
    assert created.name.startswith("templates/")
    assert [f.name for f in created.fields] == ["invoice_number", "total"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateTemplate(
            jobs_pb.CreateTemplateRequest(
                template=pb.Template(display_name="Invoices", fields=fields)
            ),
            metadata=USER,
        )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    # Another user may reuse the name, and cannot see ours.
    other = idp.metadata("carol")
    await stub.CreateTemplate(
        jobs_pb.CreateTemplateRequest(template=pb.Template(display_name="Invoices", fields=fields)),
        metadata=other,
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetTemplate(jobs_pb.GetTemplateRequest(name=created.name), metadata=other)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    updated = await stub.UpdateTemplate(
        jobs_pb.UpdateTemplateRequest(
            template=pb.Template(
                name=created.name,
                description="March",
                fields=[pb.JobField(name="iban", data_type="text")],
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["description", "fields"]),
        ),
        metadata=USER,
    )
    assert (updated.display_name, updated.description, [f.name for f in updated.fields]) == (
        "Invoices",
        "March",
        ["iban"],
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UpdateTemplate(
            jobs_pb.UpdateTemplateRequest(
                template=pb.Template(name=created.name),
                update_mask=field_mask_pb2.FieldMask(paths=["owner"]),
            ),
            metadata=USER,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A description of megabytes passed gRPC's message limit in every listing holding it.
    huge = pb.Template(name=created.name, display_name="Huge", description="d" * 2001)
    for call in (
        stub.CreateTemplate(jobs_pb.CreateTemplateRequest(template=huge), metadata=USER),
        stub.UpdateTemplate(jobs_pb.UpdateTemplateRequest(template=huge), metadata=USER),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "template.description" in (err.value.details() or "")
    listed = await stub.ListTemplates(jobs_pb.ListTemplatesRequest(), metadata=USER)
    assert [t.name for t in listed.templates] == [created.name]
    assert listed.templates[0].description == "March"


async def test_a_job_keeps_its_fields_after_its_template_is_deleted(
    channel: grpc.aio.Channel,
) -> None:
    stub = jobs_grpc.TemplateServiceStub(channel)
    created = await stub.CreateTemplate(
        jobs_pb.CreateTemplateRequest(
            template=pb.Template(
                display_name="Invoices", fields=[pb.JobField(name="iban", data_type="text")]
            )
        ),
        metadata=USER,
    )
    jobs = jobs_grpc.JobServiceStub(channel)
    job = (
        await jobs.CreateJob(
            jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=1)]),
            metadata=USER,
        )
    ).job
    configured = await jobs.ConfigureJob(
        jobs_pb.ConfigureJobRequest(name=job.name, template=created.name), metadata=USER
    )
    assert configured.template == created.name
    await stub.DeleteTemplate(jobs_pb.DeleteTemplateRequest(name=created.name), metadata=USER)
    after = await jobs.GetJob(jobs_pb.GetJobRequest(name=job.name), metadata=USER)
    assert after.template == ""
    assert [f.name for f in after.fields] == ["iban"]


async def test_reference_data(channel: grpc.aio.Channel) -> None:
    stub = jobs_grpc.TemplateServiceStub(channel)
    types = await stub.ListDataTypes(jobs_pb.ListDataTypesRequest(), metadata=USER)
    assert [t.id for t in types.data_types] == [
        "text",
        "email",
        "phone",
        "address",
        "name",
        "url",
        "number",
        "currency",
        "percentage",
        "integer",
        "date",
        "date_mdy",
        "date_dmy",
        "date_ymd",
        "time",
        "boolean",
    ]
    prompts = await stub.ListSystemPrompts(jobs_pb.ListSystemPromptsRequest(), metadata=USER)
    assert [p.active for p in prompts.system_prompts] == [True]


async def test_users_and_api_keys(
    channel: grpc.aio.Channel, idp: IdentityProvider, jobs: RunningJobsService
) -> None:
    users = jobs_grpc.UserServiceStub(channel)
    job_api = jobs_grpc.JobServiceStub(channel)
    dave = idp.metadata("dave")
    me = await users.SyncCurrentUser(
        jobs_pb.SyncCurrentUserRequest(display_name="Dave"), metadata=dave
    )
    assert me.email == "dave@example.test"
    assert me.display_name == "Dave"
    assert (
        await users.SyncCurrentUser(jobs_pb.SyncCurrentUserRequest(), metadata=dave)
    ).name == me.name

    key = await users.CreateApiKey(
        jobs_pb.CreateApiKeyRequest(parent="users/me", api_key=pb.ApiKey(display_name="ci")),
        metadata=dave,
    )
    assert key.key.startswith("brk_")
    assert key.prefix == key.key[:8]
    with_key = (("x-api-key", key.key),)
    job = (
        await job_api.CreateJob(
            jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=1)]),
            metadata=with_key,
        )
    ).job
    assert job.owner == me.name  # the key acts as its user
    # A key makes no keys: a leaked one would mint others that outlive its revocation.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await users.CreateApiKey(
            jobs_pb.CreateApiKeyRequest(parent="users/me", api_key=pb.ApiKey(display_name="x")),
            metadata=with_key,
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "sign in" in (err.value.details() or "")
    assert [
        j.name for j in (await job_api.ListJobs(jobs_pb.ListJobsRequest(), metadata=dave)).jobs
    ] == [job.name]
    listed = await users.ListApiKeys(jobs_pb.ListApiKeysRequest(parent=me.name), metadata=dave)
    assert [k.key for k in listed.api_keys] == [""]  # the secret is shown once only
    # Last use is kept to the minute: a call within it writes nothing, one after it does.
    first_use = listed.api_keys[0].last_used_time.ToDatetime()
    assert first_use.year >= 2026
    await job_api.ListJobs(jobs_pb.ListJobsRequest(), metadata=with_key)
    listed = await users.ListApiKeys(jobs_pb.ListApiKeysRequest(parent=me.name), metadata=dave)
    assert listed.api_keys[0].last_used_time.ToDatetime() == first_use
    async with jobs.ctx.transaction() as session:
        await session.execute(
            update(models.ApiKey).values(last_used_at=models.utcnow() - dt.timedelta(minutes=2))
        )
    await job_api.ListJobs(jobs_pb.ListJobsRequest(), metadata=with_key)
    listed = await users.ListApiKeys(jobs_pb.ListApiKeysRequest(parent=me.name), metadata=dave)
    assert listed.api_keys[0].last_used_time.ToDatetime() > first_use
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await users.ListApiKeys(
            jobs_pb.ListApiKeysRequest(parent=me.name), metadata=idp.metadata("eve")
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    await users.DeleteApiKey(
        jobs_pb.DeleteApiKeyRequest(name=listed.api_keys[0].name), metadata=dave
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_api.ListJobs(jobs_pb.ListJobsRequest(), metadata=with_key)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    expired = (("authorization", f"Bearer {idp.token('dave', expires_in=-60)}"),)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_api.ListJobs(jobs_pb.ListJobsRequest(), metadata=expired)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_file_pages_and_progress(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await completed_job(job_stub, worker_stub, settings, files=3)
    files = await job_stub.ListFiles(
        jobs_pb.ListFilesRequest(parent=job, page_size=2), metadata=USER
    )
    assert len(files.files) == 2
    assert files.next_page_token
    rest = await job_stub.ListFiles(
        jobs_pb.ListFilesRequest(parent=job, page_size=2, page_token=files.next_page_token),
        metadata=USER,
    )
    assert len(rest.files) == 1
    assert not rest.next_page_token
    progress = await job_stub.GetJobProgress(jobs_pb.GetJobProgressRequest(name=job), metadata=USER)
    assert dict(progress.files_by_status) == {"READY": 3}
    assert dict(progress.tasks_by_status) == {"SUCCEEDED": 3}
    assert progress.analysis_done


@pytest.mark.parametrize(
    "value",
    [[1, 2], {"a": 1}, float("nan"), float("inf"), "x" * 10_001],
    ids=["list", "object", "nan", "infinity", "long"],
)
async def test_a_correction_is_a_value_an_extractor_could_write(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, value: Any
) -> None:
    # A list of 500,000 numbers was stored and came back on every page of results; NaN and
    # Infinity are not JSON, which PostgreSQL's json column refused (INTERNAL).
    job = await completed_job(job_stub, worker_stub, settings, files=1)
    [result] = (
        await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    ).results
    values = struct_pb2.Struct()
    values.update({"total": value})
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.UpdateResult(
            jobs_pb.UpdateResultRequest(
                result=pb.Result(name=result.name, values=values),
                update_mask=field_mask_pb2.FieldMask(paths=["values.total"]),
            ),
            metadata=USER,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert "must be" in (err.value.details() or "")
    versions = await job_stub.ListResultVersions(
        jobs_pb.ListResultVersionsRequest(parent=result.name), metadata=USER
    )
    assert len(versions.versions) == 1
    got = await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    assert got.results[0].values == result.values


async def test_results_edit_export_delete(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    job = await completed_job(job_stub, worker_stub, settings, files=3)
    results = (
        await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    ).results
    edited_values = struct_pb2.Struct()
    edited_values.update({"total": 99.0})
    edited = await job_stub.UpdateResult(
        jobs_pb.UpdateResultRequest(
            result=pb.Result(name=results[0].name, values=edited_values),
            update_mask=field_mask_pb2.FieldMask(paths=["values.total"]),
        ),
        metadata=USER,
    )
    assert edited.edited
    # Stored as an extracted amount is: a decimal string with its two places.
    assert dict(edited.values)["total"] == "99.00"
    assert dict(edited.values)["number"] == results[0].values["number"]
    bad = struct_pb2.Struct()
    bad.update({"nope": 1})
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.UpdateResult(
            jobs_pb.UpdateResultRequest(result=pb.Result(name=results[0].name, values=bad)),
            metadata=USER,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    async def export(fmt: str) -> tuple[bytes, str]:
        call = job_stub.ExportResults(
            jobs_pb.ExportResultsRequest(name=job, format=fmt), metadata=USER
        )
        chunks = [chunk async for chunk in call]
        return b"".join(c.data for c in chunks), chunks[0].content_type

    data, content_type = await export("csv")
    assert content_type.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    # A value was corrected: the export says which (#16).
    assert rows[0] == ["file", "number", "total", "corrected"]
    assert [r[3] for r in rows[1:]] == ["total", "", ""]
    assert rows[1][1].startswith("'=")  # formula injection neutralised
    assert rows[1][2] == "99.00"  # a currency keeps its two decimal places (#14)
    # Negative amounts are numbers, not formulas to neutralise.
    assert all(r[2].startswith("-1") and r[2].endswith(".50") for r in rows[2:])
    data, _ = await export("json")
    parsed = json.loads(data)
    assert parsed["fields"] == ["number", "total"]
    assert len(parsed["results"]) == 3
    assert [r["corrected"] for r in parsed["results"]] == [["total"], [], []]
    data, _ = await export("xlsx")
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    assert [c.value for c in sheet[1]] == ["file", "number", "total", "corrected"]
    assert sheet.max_row == 4
    assert sheet.cell(2, 3).value == 99
    assert sheet.cell(2, 3).number_format == "0.00"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await export("pdf")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    assert list(jobs.ctx.storage.list_keys(f"{job}/"))
    await job_stub.DeleteJob(jobs_pb.DeleteJobRequest(name=job), metadata=USER)
    assert list(jobs.ctx.storage.list_keys(f"{job}/")) == []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_watch_job_streams_progress(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings)
    seen: list[pb.JobEvent] = []

    async def watch() -> None:
        async for event in job_stub.WatchJob(
            jobs_pb.WatchJobRequest(name=job, after_sequence=1), metadata=USER
        ):
            seen.append(event)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.3)
    await job_stub.CancelJob(jobs_pb.CancelJobRequest(name=job), metadata=USER)
    await asyncio.wait_for(watcher, timeout=10)  # the stream ends when the job is final
    kinds = [(e.kind, e.to_status) for e in seen]
    assert ("job.status", "READY") in kinds  # replayed
    assert kinds[-1] == ("job.status", "CANCELLED")  # live
    assert [e.sequence for e in seen] == sorted({e.sequence for e in seen})


async def test_export_of_10000_results_is_streamed_with_bounded_memory(
    job_stub: JobStub, settings: Settings, jobs: RunningJobsService
) -> None:
    job_name = (
        await job_stub.CreateJob(
            jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=1)]),
            metadata=USER,
        )
    ).job.name
    job_id = job_name.split("/")[1]
    count = 10_000
    async with jobs.ctx.sessions.begin() as session:
        file_id = (await session.get(models.Job, job_id)) and models.new_id()
        source = models.SourceFile(
            id=file_id, job_id=job_id, original_path="big/a.pdf", storage_key="k", status="READY"
        )
        session.add(source)
        session.add(models.JobField(job_id=job_id, position=0, name="text", data_type_id="text"))
        await session.flush()
        # Core multi-row INSERTs, not 30,000 ORM objects: the rows are the test's setup, the
        # export is what it measures (the ORM's unit of work took most of the test's time).
        ids = [models.new_id() for _ in range(count)]
        await session.execute(
            insert(models.Task),
            [
                {
                    "id": task_id,
                    "job_id": job_id,
                    "position": i,
                    "mode": "TASK_MODE_INDIVIDUAL",
                    "status": "SUCCEEDED",
                }
                for i, task_id in enumerate(ids)
            ],
        )
        await session.execute(
            insert(models.TaskFile),
            [{"task_id": task_id, "position": 0, "file_id": file_id} for task_id in ids],
        )
        await session.execute(
            insert(models.Result),
            [
                {
                    "job_id": job_id,
                    "task_id": task_id,
                    "position": i,
                    "values": {"text": "x" * 500 + str(i)},
                }
                for i, task_id in enumerate(ids)
            ],
        )
    tracemalloc.start()
    try:
        total = 0
        rows = 0
        async for chunk in job_stub.ExportResults(
            jobs_pb.ExportResultsRequest(name=job_name, format="csv"), metadata=USER
        ):
            total += len(chunk.data)
            rows += chunk.data.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == count + 1
    assert total > 5_000_000
    # The whole export is >5 MB; client and server together never held more than a few pages.
    assert peak < 20 * 1024 * 1024, peak


async def test_cleanup(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    ctx = jobs.ctx
    abandoned = (
        await job_stub.CreateJob(
            jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=1)]),
            metadata=USER,
        )
    ).job.name
    ephemeral = await completed_job(job_stub, worker_stub, settings, files=1)
    kept = await completed_job(job_stub, worker_stub, settings, files=1)
    assert (
        await job_stub.GetJob(jobs_pb.GetJobRequest(name=kept), metadata=USER)
    ).persist_data  # the default
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(models.Job)
            .where(models.Job.id == ephemeral.split("/")[1])
            .values(persist_data=False)
        )
    with ctx.storage.open_write("jobs/" + "f" * 32 + "/uploads/orphan") as handle:
        handle.write(b"left behind")
    cleanup = Cleanup(ctx)
    later = models.utcnow() + dt.timedelta(hours=25)
    assert (
        await cleanup.abandoned(older_than=dt.timedelta(hours=24))
    ).jobs_deleted == 0  # too young
    first = [
        await cleanup.abandoned(older_than=dt.timedelta(hours=24), now=later),
        await cleanup.ephemeral(older_than=dt.timedelta(hours=24), now=later),
        await cleanup.orphans(older_than=dt.timedelta(hours=6), now=later),
    ]
    assert [(r.jobs_deleted, r.objects_deleted) for r in first] == [(1, 0), (1, 1), (0, 1)]
    again = [
        await cleanup.abandoned(older_than=dt.timedelta(hours=24), now=later),
        await cleanup.ephemeral(older_than=dt.timedelta(hours=24), now=later),
        await cleanup.orphans(older_than=dt.timedelta(hours=6), now=later),
    ]
    assert [(r.jobs_deleted, r.objects_deleted) for r in again] == [(0, 0), (0, 0), (0, 0)]
    remaining = [
        j.name for j in (await job_stub.ListJobs(jobs_pb.ListJobsRequest(), metadata=USER)).jobs
    ]
    assert remaining == [kept]
    assert abandoned not in remaining


async def test_metrics(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    await completed_job(job_stub, worker_stub, settings, files=1)
    # The job's last outbox rows (its end's events) go out just after it completes: under
    # load the gauge read them a moment before the relay sent them (0.13 s old).
    deadline = time.monotonic() + 30
    while await jobs.relay.oldest_unsent_age() > 0:
        assert time.monotonic() < deadline, "the relay never sent the job's last rows"
        await asyncio.sleep(0.05)
    await metrics.refresh(jobs.ctx, jobs.relay._js, jobs.relay, [streams.ingest_queue(settings)])
    assert REGISTRY.get_sample_value("bytereview_jobs", {"status": "COMPLETED"}) == 1
    assert REGISTRY.get_sample_value("bytereview_outbox_lag_seconds") == 0
    assert (
        REGISTRY.get_sample_value(
            "bytereview_task_duration_seconds_count", {"outcome": "succeeded"}
        )
        or 0
    ) >= 1


async def test_archive_entries_are_registered_once(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, idp: IdentityProvider
) -> None:
    created = await job_stub.CreateJob(
        jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="batch.zip", size_bytes=3)]),
        metadata=USER,
    )
    job, archive = created.job.name, created.upload_targets[0].file
    upload(settings, created.upload_targets[0], b"PK\x03\x04")
    await job_stub.FinalizeUploads(jobs_pb.FinalizeUploadsRequest(name=job), metadata=USER)
    prefix = f"{job}/entries/{archive.rsplit('/', 1)[1]}/"
    entries = [
        worker_pb.ArchiveEntry(
            index=0, path="march/a.pdf", storage_key=prefix + "0", size_bytes=10
        ),
        worker_pb.ArchiveEntry(
            index=1,
            path="march/b.png",
            storage_key=prefix + "1",
            size_bytes=10,
            status=pb.SourceFile.READY,
            media_type="image/png",
            page_count=1,
        ),
        worker_pb.ArchiveEntry(
            index=2,
            path="notes.txt",
            storage_key=prefix + "2",
            size_bytes=10,
            status=pb.SourceFile.UNSUPPORTED,
            error="text files cannot be extracted",
        ),
    ]
    first = await worker_stub.ReportArchiveEntries(
        worker_pb.ReportArchiveEntriesRequest(archive=archive, entries=entries), metadata=WORKER
    )
    again = await worker_stub.ReportArchiveEntries(
        worker_pb.ReportArchiveEntriesRequest(archive=archive, entries=entries), metadata=WORKER
    )
    assert (first.created, len(first.queued)) == (3, 1)  # only the PDF still needs analysis
    assert (again.created, list(again.queued)) == (0, [])
    with pytest.raises(grpc.aio.AioRpcError) as err:  # nothing may be stored outside the job
        await worker_stub.ReportArchiveEntries(
            worker_pb.ReportArchiveEntriesRequest(
                archive=archive,
                entries=[worker_pb.ArchiveEntry(index=9, path="x.pdf", storage_key="jobs/other/x")],
            ),
            metadata=WORKER,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await worker_stub.ReportFileAnalysis(
        worker_pb.ReportFileAnalysisRequest(
            file=archive, status=pb.SourceFile.UNPACKED, media_type="application/zip"
        ),
        metadata=WORKER,
    )
    files = {
        f.original_path: f
        for f in (
            await job_stub.ListFiles(jobs_pb.ListFilesRequest(parent=job), metadata=USER)
        ).files
    }
    assert set(files) == {
        "batch.zip",
        "batch.zip/march/a.pdf",
        "batch.zip/march/b.png",
        "batch.zip/notes.txt",
    }
    assert files["batch.zip/march/b.png"].folder == "batch.zip/march"
    assert files["batch.zip/march/a.pdf"].parent_archive == archive
    # Still analysing: the PDF entry is not settled yet.
    assert (
        await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    ).status == pb.Job.ANALYZING
    await worker_stub.ReportFileAnalysis(
        worker_pb.ReportFileAnalysisRequest(
            file=files["batch.zip/march/a.pdf"].name,
            status=pb.SourceFile.READY,
            media_type="application/pdf",
            page_count=1,
        ),
        metadata=WORKER,
    )
    done = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert done.status == pb.Job.READY
    assert (done.counters.files_total, done.counters.files_ready, done.counters.files_failed) == (
        4,
        2,
        1,
    )

    # Workers may look up any file; users only their own.
    looked_up = await worker_stub.GetFileForWorker(
        worker_pb.GetFileForWorkerRequest(file=archive), metadata=WORKER
    )
    assert looked_up.file.storage_key.startswith(f"{job}/uploads/")
    assert looked_up.caller == ""  # a worker is nobody's share
    as_user = await worker_stub.GetFileForWorker(
        worker_pb.GetFileForWorkerRequest(file=archive), metadata=USER
    )
    assert as_user.file.name == archive
    # The user it was asked for, whichever credential of theirs asked (RenderPage's share).
    assert as_user.caller.startswith("users/")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await worker_stub.GetFileForWorker(
            worker_pb.GetFileForWorkerRequest(file=archive), metadata=idp.metadata("mallory")
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_migrations_match_the_models(database_url: str) -> None:
    """A database migrated to head has exactly the schema the models describe."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = jobs_db.create_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync), models.Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []
