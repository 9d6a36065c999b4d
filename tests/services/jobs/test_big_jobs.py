"""Big jobs (#18): tasks built in batches after StartJob, a job that never finishes before
its tasks are all built, and exports streamed page by page with the right content."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections import Counter
from typing import TYPE_CHECKING

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bytereview.core import streams
from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs import RunningJobsService
from services.jobs.domain.status import JobStatus
from services.jobs.domain.tasks import building
from services.jobs.domain.tasks.finishing import finish_if_done
from services.jobs.store import models
from tests.conftest import USER
from tests.services.jobs.helpers import FIELDS, WORKER, files, pull_exactly, ready_job, tasks
from tests.services.jobs.many_results import EXPORTED, job_with_results

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub


async def _built(jobs: RunningJobsService, job: str) -> tuple[int, int]:
    async with jobs.ctx.reading() as session:
        row = await session.get(models.Job, job.split("/")[1])
        assert row is not None
        return row.tasks_built, row.tasks_total


async def _wait_built(jobs: RunningJobsService, job: str) -> None:
    for _ in range(100):
        built, total = await _built(jobs, job)
        if built == total:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"tasks of {job} still unbuilt: {await _built(jobs, job)}")


async def test_tasks_are_built_in_batches_after_start(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    jobs: RunningJobsService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(building, "BATCH", 7)
    monkeypatch.setattr(building, "START_BATCH", 5)
    job = await ready_job(job_stub, worker_stub, jobs.ctx.settings, files=20)
    await job_stub.ConfigureJob(jobs_pb.ConfigureJobRequest(name=job, fields=FIELDS), metadata=USER)
    started = await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    assert started.counters.tasks_total == 20
    await _wait_built(jobs, job)
    built = await tasks(job_stub, job)
    async with jobs.ctx.reading() as session:
        positions = (
            await session.scalars(
                select(models.Task.position)
                .where(models.Task.job_id == job.split("/")[1])
                .order_by(models.Task.position)
            )
        ).all()
    assert list(positions) == list(range(20))
    by_path = {f.name: f.original_path for f in await files(job_stub, job)}
    task_paths = [by_path[t.files[0]] for t in built]
    assert task_paths == sorted(by_path.values())  # each file once, in path order
    queued = [
        extract_messages.ExtractTaskMessage.FromString(m).task
        for m in await pull_exactly(jobs.ctx.settings, streams.extract_queue(jobs.ctx.settings), 20)
    ]
    assert sorted(queued) == sorted(t.name for t in built)
    # Progress reads counters for the big statuses: it agrees with counting every row.
    await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=built[0].name), metadata=WORKER)
    await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=built[1].name), metadata=WORKER)
    await worker_stub.ReportTaskResult(
        worker_pb.ReportTaskResultRequest(task=built[1].name), metadata=WORKER
    )
    await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=built[2].name), metadata=WORKER)
    await worker_stub.ReportTaskFailure(
        worker_pb.ReportTaskFailureRequest(
            task=built[2].name,
            failure_class=worker_pb.ReportTaskFailureRequest.FailureClass.PERMANENT,
            error="unreadable",
        ),
        metadata=WORKER,
    )
    await _progress_agrees(job_stub, jobs, job)
    await job_stub.CancelJob(jobs_pb.CancelJobRequest(name=job), metadata=USER)
    # Its open tasks are cancelled in the background (tasks.settling): agree once they are.
    # (The settled ones keep their status: waiting for all CANCELLED waited out the loop.)
    for _ in range(100):
        statuses = Counter(t.status for t in await tasks(job_stub, job))
        if pb.Task.QUEUED not in statuses and pb.Task.RUNNING not in statuses:
            break
        await asyncio.sleep(0.1)
    assert statuses == {pb.Task.CANCELLED: 18, pb.Task.SUCCEEDED: 1, pb.Task.FAILED: 1}
    await _progress_agrees(job_stub, jobs, job)


async def _progress_agrees(job_stub: JobStub, jobs: RunningJobsService, job: str) -> None:
    job_id = job.split("/")[1]
    async with jobs.ctx.reading() as session:
        truth = []
        for model in (models.SourceFile, models.Task):
            rows = await session.execute(
                select(model.status, func.count())
                .where(model.job_id == job_id)
                .group_by(model.status)
            )
            truth.append({str(s): int(n) for s, n in rows.all()})
    got = await job_stub.GetJobProgress(jobs_pb.GetJobProgressRequest(name=job), metadata=USER)
    assert [dict(got.files_by_status), dict(got.tasks_by_status)] == truth


async def test_combined_tasks_are_built_a_folder_at_a_time(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    jobs: RunningJobsService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(building, "BATCH", 1)
    monkeypatch.setattr(building, "START_BATCH", 1)
    job = await ready_job(job_stub, worker_stub, jobs.ctx.settings, files=6)
    await job_stub.ConfigureJob(
        jobs_pb.ConfigureJobRequest(name=job, fields=FIELDS, task_mode=pb.TASK_MODE_COMBINED),
        metadata=USER,
    )
    started = await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    assert started.counters.tasks_total == 2
    await _wait_built(jobs, job)
    built = await tasks(job_stub, job)
    by_path = {f.name: f.original_path for f in await files(job_stub, job)}
    assert [sorted(by_path[f] for f in t.files) for t in built] == [
        ["folder0/doc0.pdf", "folder0/doc2.pdf", "folder0/doc4.pdf"],
        ["folder1/doc1.pdf", "folder1/doc3.pdf", "folder1/doc5.pdf"],
    ]


async def test_a_job_never_finishes_before_its_tasks_are_built(
    job_stub: JobStub, worker_stub: WorkerStub, jobs: RunningJobsService
) -> None:
    job = await ready_job(job_stub, worker_stub, jobs.ctx.settings, files=1)
    job_id = job.split("/")[1]
    async with jobs.ctx.transaction() as session:
        row = await session.get(models.Job, job_id)
        assert row is not None
        # Started, no open task yet, two tasks still to build (what a crash between batches
        # or a builder behind the workers looks like).
        row.status, row.tasks_total, row.tasks_built = JobStatus.QUEUED, 2, 0
        await finish_if_done(session, row)
        before = str(row.status)
        row.tasks_built = 2
        await finish_if_done(session, row)
        after = str(row.status)
    assert (before, after) == (JobStatus.QUEUED, JobStatus.COMPLETED)


async def _export(job_stub: JobStub, job: str, fmt: str) -> list[bytes]:
    stream = job_stub.ExportResults(
        jobs_pb.ExportResultsRequest(name=job, format=fmt), metadata=USER
    )
    return [chunk.data async for chunk in stream]


async def test_exports_stream_thousands_of_results_in_order(
    job_stub: JobStub, worker_stub: WorkerStub, jobs: RunningJobsService
) -> None:
    job = await job_with_results(job_stub, worker_stub, jobs)
    async with jobs.ctx.reading() as session:
        assert await session.scalar(select(func.count()).select_from(models.Result)) == EXPORTED

    chunks = await _export(job_stub, job, "csv")
    assert len(chunks) > 1  # streamed, not one body
    # The header line leaves first, on its own: the response does not wait for rows.
    assert chunks[0].decode("utf-8-sig") == "file,invoice_number,total\r\n"
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))
    assert rows[0] == ["file", "invoice_number", "total"]
    assert len(rows) == EXPORTED + 1
    for i in (0, 499, 500, 1999, EXPORTED - 1):  # across the export's page boundaries
        assert rows[i + 1] == [f"batch/{i:05d} ünïcode.pdf", f"INV-{i}" + "x" * 80, f"{i}.50"]

    document = json.loads(b"".join(await _export(job_stub, job, "json")))
    assert document["fields"] == ["invoice_number", "total"]
    assert [r["values"]["total"] for r in document["results"]] == [
        f"{i}.50" for i in range(EXPORTED)
    ]
    assert document["results"][7] == {
        "file": "batch/00007 ünïcode.pdf",
        "values": {"invoice_number": "INV-7" + "x" * 80, "total": "7.50"},
        "edited": False,
        "corrected": [],
    }

    book = load_workbook(io.BytesIO(b"".join(await _export(job_stub, job, "xlsx"))))
    sheet = [[c.value for c in row] for row in book["results"].iter_rows()]
    assert len(sheet) == EXPORTED + 1
    assert sheet[EXPORTED][0] == f"batch/{EXPORTED - 1:05d} ünïcode.pdf"
    assert str(sheet[1234][2]) == "1233.5"  # money is a number cell (0.00 format)


async def test_folder_rules_hold_across_batches(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    jobs: RunningJobsService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Built a task or two at a time, a job with a combined folder among individual files
    gets exactly the tasks plan_tasks plans, in its order."""
    monkeypatch.setattr(building, "BATCH", 2)
    monkeypatch.setattr(building, "START_BATCH", 1)
    job = await ready_job(job_stub, worker_stub, jobs.ctx.settings, files=9)
    await job_stub.ConfigureJob(
        jobs_pb.ConfigureJobRequest(
            name=job,
            fields=FIELDS,
            task_mode=pb.TASK_MODE_INDIVIDUAL,
            folder_rules=[pb.FolderRule(folder="folder1", task_mode=pb.TASK_MODE_COMBINED)],
        ),
        metadata=USER,
    )
    started = await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    await _wait_built(jobs, job)
    by_path = {f.name: f.original_path for f in await files(job_stub, job)}
    built = [[by_path[f] for f in t.files] for t in await tasks(job_stub, job)]
    folder1 = ["folder1/doc1.pdf", "folder1/doc3.pdf", "folder1/doc5.pdf", "folder1/doc7.pdf"]
    singles = [[f"folder0/doc{i}.pdf"] for i in (0, 2, 4, 6, 8)]
    assert built == [*singles, folder1]
    assert started.counters.tasks_total == len(built) == 6
