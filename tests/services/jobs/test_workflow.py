"""The job workflow through the real jobs service (gRPC), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import struct_pb2

from bytereview.core import streams
from bytereview.core.settings import Settings
from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.ingest.v1 import messages_pb2 as ingest_messages
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from tests.conftest import USER
from tests.identity import IdentityProvider
from tests.services.jobs.helpers import (
    PDF,
    WORKER,
    completed_job,
    no_more_queued,
    pull_exactly,
    ready_job,
    started_tasks,
    upload,
)

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub


async def test_whole_workflow(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    created = await job_stub.CreateJob(
        jobs_pb.CreateJobRequest(
            display_name="march",
            files=[
                jobs_pb.DeclaredFile(
                    path="inv.pdf", size_bytes=len(PDF), content_type="application/pdf"
                )
            ],
        ),
        metadata=USER,
    )
    job = created.job.name
    assert created.job.status == pb.Job.PENDING_UPLOAD
    assert len(created.upload_targets) == 1
    target = created.upload_targets[0]
    assert target.method == "PUT"
    assert target.url.startswith("http://gateway.test/v1/storage/objects?")

    # Finalizing before the bytes arrive is refused and changes nothing.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.FinalizeUploads(jobs_pb.FinalizeUploadsRequest(name=job), metadata=USER)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not uploaded" in (err.value.details() or "")

    upload(settings, target, PDF)
    finalized = await job_stub.FinalizeUploads(
        jobs_pb.FinalizeUploadsRequest(name=job), metadata=USER
    )
    assert finalized.status == pb.Job.ANALYZING

    # The outbox relay published exactly one ingest message for the file.
    ingest = [
        ingest_messages.IngestFileMessage.FromString(m)
        for m in await pull_exactly(settings, streams.ingest_queue(settings), 1)
    ]
    assert [m.file for m in ingest] == [target.file]

    report = worker_pb.ReportFileAnalysisRequest(
        file=target.file,
        status=pb.SourceFile.READY,
        media_type="application/pdf",
        size_bytes=len(PDF),
        sha256="ab" * 32,
        page_count=1,
    )
    first = await worker_stub.ReportFileAnalysis(report, metadata=WORKER)
    again = await worker_stub.ReportFileAnalysis(report, metadata=WORKER)
    assert first.applied
    assert not again.applied
    assert (
        await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    ).status == pb.Job.READY

    await job_stub.ConfigureJob(
        jobs_pb.ConfigureJobRequest(
            name=job, fields=[pb.JobField(name="invoice_number", data_type="text")]
        ),
        metadata=USER,
    )
    started = await job_stub.StartJob(
        jobs_pb.StartJobRequest(name=job, request_id="s1"), metadata=USER
    )
    assert started.status == pb.Job.QUEUED
    tasks = [
        extract_messages.ExtractTaskMessage.FromString(m).task
        for m in await pull_exactly(settings, streams.extract_queue(settings), 1)
    ]
    assert len(tasks) == 1
    begin = await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=tasks[0]), metadata=WORKER)
    assert begin.proceed
    assert [f.name for f in begin.fields] == ["invoice_number"]
    assert begin.system_prompt.active
    assert begin.files[0].name == target.file

    values = struct_pb2.Struct()
    values.update({"invoice_number": "A-1"})
    result = worker_pb.ReportTaskResultRequest(task=tasks[0], values=values, extractor="offline")
    assert (await worker_stub.ReportTaskResult(result, metadata=WORKER)).applied
    assert not (await worker_stub.ReportTaskResult(result, metadata=WORKER)).applied

    done = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert done.status == pb.Job.COMPLETED
    assert done.counters.tasks_succeeded == 1
    results = await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    assert len(results.results) == 1
    assert dict(results.results[0].values) == {"invoice_number": "A-1"}
    assert list(results.results[0].file_paths) == ["inv.pdf"]

    events = await job_stub.ListJobEvents(jobs_pb.ListJobEventsRequest(parent=job), metadata=USER)
    statuses = [e.to_status for e in events.events if e.kind == "job.status"]
    assert statuses == ["ANALYZING", "READY", "QUEUED", "RUNNING", "COMPLETED"]


async def test_configure_and_start_rules(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings)
    # Starting without fields, or configuring bad fields, is refused.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    for bad in (
        [pb.JobField(name="", data_type="text")],
        [pb.JobField(name="a", data_type="text"), pb.JobField(name="A", data_type="text")],
        [pb.JobField(name="a", data_type="nope")],
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await job_stub.ConfigureJob(
                jobs_pb.ConfigureJobRequest(name=job, fields=bad), metadata=USER
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    await job_stub.ConfigureJob(
        jobs_pb.ConfigureJobRequest(
            name=job, fields=[pb.JobField(name="invoice_number", data_type="text")]
        ),
        metadata=USER,
    )
    started = await job_stub.StartJob(
        jobs_pb.StartJobRequest(name=job, request_id="s1"), metadata=USER
    )
    assert started.status == pb.Job.QUEUED
    # A retried start with the same request id is a no-op, not an error.
    assert (
        await job_stub.StartJob(jobs_pb.StartJobRequest(name=job, request_id="s1"), metadata=USER)
    ).status == pb.Job.QUEUED
    # Fields are frozen once started.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.ConfigureJob(
            jobs_pb.ConfigureJobRequest(name=job, fields=[pb.JobField(name="x", data_type="text")]),
            metadata=USER,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_finished_job_cannot_be_started_again(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    # The table lets a finished job back to QUEUED (a retry, a re-run), but a second start
    # would snapshot its fields again: it failed on their unique key, INTERNAL.
    job = await completed_job(job_stub, worker_stub, settings)
    before = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    for request_id in ("", "another start"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await job_stub.StartJob(
                jobs_pb.StartJobRequest(name=job, request_id=request_id), metadata=USER
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()
        assert "COMPLETED" in (err.value.details() or "")
    after = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert after == before


async def test_tenancy(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, idp: IdentityProvider
) -> None:
    job = await ready_job(job_stub, worker_stub, settings)
    alice, bob = idp.metadata("alice"), idp.metadata("bob")
    mine = await job_stub.CreateJob(
        jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=3)]),
        metadata=alice,
    )
    for caller, name in ((bob, mine.job.name), (alice, job), (bob, job)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await job_stub.GetJob(jobs_pb.GetJobRequest(name=name), metadata=caller)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=name), metadata=caller)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert [
        j.name for j in (await job_stub.ListJobs(jobs_pb.ListJobsRequest(), metadata=alice)).jobs
    ] == [mine.job.name]
    assert (await job_stub.ListJobs(jobs_pb.ListJobsRequest(), metadata=bob)).jobs == []

    # Users cannot call worker RPCs; bad and missing credentials are refused.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await worker_stub.BeginTask(
            worker_pb.BeginTaskRequest(task=f"{job}/tasks/{'0' * 32}"), metadata=alice
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    for metadata in ((), (("authorization", "Bearer forged"),), (("x-api-key", "brk_nope"),)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await job_stub.ListJobs(jobs_pb.ListJobsRequest(), metadata=metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (jobs_pb.GetJobRequest(name="jobs/../x"), grpc.StatusCode.INVALID_ARGUMENT),
        (jobs_pb.GetJobRequest(name="jobs/" + "0" * 32), grpc.StatusCode.NOT_FOUND),
        (jobs_pb.ListJobsRequest(page_size=5000), grpc.StatusCode.INVALID_ARGUMENT),
        (jobs_pb.ListJobsRequest(page_token="garbage!"), grpc.StatusCode.INVALID_ARGUMENT),
        (jobs_pb.CreateJobRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        (
            jobs_pb.CreateJobRequest(
                files=[jobs_pb.DeclaredFile(path="../etc/passwd", size_bytes=1)]
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        # Names that display as another (as in archive entries): a bidi override, a C1 control.
        *(
            (
                jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path=path, size_bytes=1)]),
                grpc.StatusCode.INVALID_ARGUMENT,
            )
            for path in ("invoice\u202egnp.exe", "a\x85b.pdf", "a\x7fb.pdf")
        ),
        (
            jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=0)]),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=1)] * 2),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
async def test_bad_input(job_stub: JobStub, request_: Any, code: grpc.StatusCode) -> None:
    method: dict[str, Any] = {
        "GetJobRequest": job_stub.GetJob,
        "ListJobsRequest": job_stub.ListJobs,
        "CreateJobRequest": job_stub.CreateJob,
    }
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await method[type(request_).__name__](request_, metadata=USER)
    assert err.value.code() == code
    assert err.value.details()


async def test_create_is_idempotent_by_request_id(job_stub: JobStub) -> None:
    request = jobs_pb.CreateJobRequest(
        files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=5)], request_id="r-1"
    )
    first = await job_stub.CreateJob(request, metadata=USER)
    second = await job_stub.CreateJob(request, metadata=USER)
    assert first.job.name == second.job.name
    assert (await job_stub.ListJobs(jobs_pb.ListJobsRequest(), metadata=USER)).total_size == 1


async def test_a_request_id_reused_for_other_files_is_already_exists(job_stub: JobStub) -> None:
    # The first job came back for any request of the id: the files only the second request
    # declared had no job and no upload target, and nothing said so.
    first = jobs_pb.CreateJobRequest(
        files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=5)], request_id="r-1"
    )
    made = await job_stub.CreateJob(first, metadata=USER)
    for files in (
        [jobs_pb.DeclaredFile(path="b.pdf", size_bytes=5)],
        [jobs_pb.DeclaredFile(path="a.pdf", size_bytes=6)],
        [jobs_pb.DeclaredFile(path="a.pdf", size_bytes=5, content_type="application/pdf")],
        [
            jobs_pb.DeclaredFile(path="a.pdf", size_bytes=5),
            jobs_pb.DeclaredFile(path="b.pdf", size_bytes=5),
        ],
    ):
        other = jobs_pb.CreateJobRequest(files=files, request_id="r-1")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await job_stub.CreateJob(other, metadata=USER)
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert made.job.name in (err.value.details() or "")
    # The same files, spelt as the path rule cleans them, are the same request: a retry.
    retry = jobs_pb.CreateJobRequest(
        files=[jobs_pb.DeclaredFile(path="./a.pdf", size_bytes=5)], request_id="r-1"
    )
    assert (await job_stub.CreateJob(retry, metadata=USER)).job.name == made.job.name
    assert (await job_stub.ListJobs(jobs_pb.ListJobsRequest(), metadata=USER)).total_size == 1


async def test_combined_mode_groups_by_folder(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=4)
    await job_stub.ConfigureJob(
        jobs_pb.ConfigureJobRequest(
            name=job,
            fields=[pb.JobField(name="total", data_type="currency")],
            task_mode=pb.TASK_MODE_COMBINED,
        ),
        metadata=USER,
    )
    await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    tasks = (await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)).tasks
    assert sorted(t.folder for t in tasks) == ["folder0", "folder1"]
    assert all(len(t.files) == 2 for t in tasks)


async def test_pause_resume_cancel(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=2)
    first = await started_tasks(
        job_stub, settings, job, [pb.JobField(name="total", data_type="currency")], 2
    )
    assert len(first) == 2
    await no_more_queued(settings, streams.extract_queue(settings))
    assert (
        await job_stub.PauseJob(jobs_pb.PauseJobRequest(name=job), metadata=USER)
    ).status == pb.Job.PAUSED
    held = await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=first[0]), metadata=WORKER)
    assert not held.proceed
    assert "PAUSED" in held.reason
    assert (
        await job_stub.ResumeJob(jobs_pb.ResumeJobRequest(name=job), metadata=USER)
    ).status == pb.Job.QUEUED
    # Resuming queues the held tasks again.
    again = [
        extract_messages.ExtractTaskMessage.FromString(m).task
        for m in await pull_exactly(settings, streams.extract_queue(settings), 2)
    ]
    assert sorted(again) == sorted(first)
    assert (
        await job_stub.CancelJob(jobs_pb.CancelJobRequest(name=job), metadata=USER)
    ).status == pb.Job.CANCELLED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.ResumeJob(jobs_pb.ResumeJobRequest(name=job), metadata=USER)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # The tasks follow in the background (tasks.settling): wait for them.
    for _ in range(100):
        listed = await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)
        if {t.status for t in listed.tasks} == {pb.Task.CANCELLED}:
            break
        await asyncio.sleep(0.1)
    assert {t.status for t in listed.tasks} == {pb.Task.CANCELLED}


async def test_resume_ends_a_job_whose_tasks_all_settled_while_paused(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    # Found by the web app's pause test: tasks in flight finished while the job was paused,
    # and resuming left it QUEUED for ever (no report was left to end it).
    job = await ready_job(job_stub, worker_stub, settings, files=2)
    # Its two tasks: pulling up to more would wait out pull's quiet period (3 s).
    tasks = await started_tasks(
        job_stub, settings, job, [pb.JobField(name="total", data_type="currency")], 2
    )
    assert len(tasks) == 2
    for task in tasks:
        begun = await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
        assert begun.proceed
    await job_stub.PauseJob(jobs_pb.PauseJobRequest(name=job), metadata=USER)
    for task in tasks:
        values = struct_pb2.Struct()
        values.update({"total": "1.00"})
        await worker_stub.ReportTaskResult(
            worker_pb.ReportTaskResultRequest(task=task, values=values), metadata=WORKER
        )
    paused = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert paused.status == pb.Job.PAUSED
    resumed = await job_stub.ResumeJob(jobs_pb.ResumeJobRequest(name=job), metadata=USER)
    assert resumed.status == pb.Job.COMPLETED


async def test_failures_and_retry(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await ready_job(job_stub, worker_stub, settings, files=2)
    # Its two tasks (a duplicate message would show in the exact count after the retry).
    tasks = await started_tasks(
        job_stub, settings, job, [pb.JobField(name="total", data_type="currency")], 2
    )
    assert len(tasks) == 2
    for task in tasks:
        await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
    failure = worker_pb.ReportTaskFailureRequest.FailureClass
    retry = await worker_stub.ReportTaskFailure(
        worker_pb.ReportTaskFailureRequest(
            task=tasks[0], failure_class=failure.RETRYABLE, error="503"
        ),
        metadata=WORKER,
    )
    assert retry.status == pb.Task.QUEUED
    await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=tasks[0]), metadata=WORKER)
    for task in tasks:
        await worker_stub.ReportTaskFailure(
            worker_pb.ReportTaskFailureRequest(
                task=task, failure_class=failure.PERMANENT, error="unreadable"
            ),
            metadata=WORKER,
        )
    failed = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert failed.status == pb.Job.FAILED
    assert failed.counters.tasks_failed == 2
    listed = (await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)).tasks
    assert {t.last_error for t in listed} == {"unreadable"}
    retried = await job_stub.RetryFailedTasks(
        jobs_pb.RetryFailedTasksRequest(name=job), metadata=USER
    )
    assert retried.status == pb.Job.QUEUED
    assert len(await pull_exactly(settings, streams.extract_queue(settings), 2)) == 2


async def test_concurrent_reports_on_one_job_all_land(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    """Many workers reporting on one job at once (each report appends job events): none fails,
    on SQLite (which ignores row locks) as on PostgreSQL."""
    job = await ready_job(job_stub, worker_stub, settings, files=12)
    tasks = await started_tasks(
        job_stub, settings, job, [pb.JobField(name="t", data_type="text")], 12
    )
    assert len(tasks) == 12

    async def work(task: str) -> None:
        begun = await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
        assert begun.proceed
        values = struct_pb2.Struct()
        values.update({"t": task})
        await worker_stub.ReportTaskResult(
            worker_pb.ReportTaskResultRequest(task=task, values=values, extractor="test"),
            metadata=WORKER,
        )

    await asyncio.gather(*(work(t) for t in tasks))
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.status == pb.Job.COMPLETED
    assert got.counters.tasks_succeeded == 12
    events = await job_stub.ListJobEvents(
        jobs_pb.ListJobEventsRequest(parent=job, page_size=500), metadata=USER
    )
    sequences = [e.sequence for e in events.events]
    assert sequences == sorted(set(sequences))  # no gaps lost to a failed transaction, no repeats


async def test_an_empty_or_too_large_file_is_named_by_its_path(job_stub: JobStub) -> None:
    """One file of many refused: "files[3].size_bytes must be positive" left a person who
    dropped 40 files looking for it."""
    files = [jobs_pb.DeclaredFile(path="scans/b.pdf", size_bytes=0)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.CreateJob(jobs_pb.CreateJobRequest(files=files), metadata=USER)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        err.value.details() == "files[0].size_bytes: 'scans/b.pdf' is empty (0 bytes); leave it out"
    )
    files = [jobs_pb.DeclaredFile(path="a.pdf", size_bytes=-5)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.CreateJob(jobs_pb.CreateJobRequest(files=files), metadata=USER)
    assert err.value.details() == "files[0].size_bytes: 'a.pdf' is said to be negative"
    files = [jobs_pb.DeclaredFile(path="big.zip", size_bytes=2**62)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.CreateJob(jobs_pb.CreateJobRequest(files=files), metadata=USER)
    assert (err.value.details() or "").startswith(
        f"files[0].size_bytes: 'big.zip' is {2**62} bytes"
    )
