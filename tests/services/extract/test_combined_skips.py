"""Combined mode with a file that cannot be read: the folder's result comes from the files
that can, and names the one left out and why; a folder none of whose files can be read
fails its task saying why for each. Through real NATS, the real jobs service and the real
extract worker (offline extractor)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import nats
import pytest

from bytereview.core import Settings, storage_keys, streams
from bytereview.core.storage import make_storage
from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs import RunningJobsService
from tests.conftest import USER
from tests.gemini_standin import GeminiStandIn, Reply, RunningStandIn
from tests.pdfs import text_pdf
from tests.services.extract.test_worker import (
    FIELDS,
    STORED,
    finished,
    gemini_settings,
    results,
    running_worker,
    tasks,
    worker_settings,
)
from tests.services.jobs.helpers import WORKER, upload

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

NUMBER_ONLY = text_pdf(["Invoice Number: A-1"])
TOTAL_ONLY = text_pdf(["Total: 10.00"])
BOTH = text_pdf(["Invoice Number: A-1", "Total: 10.00"])
# Past analysis, yet not a PDF pdfium can open (a truncated upload, a corrupted copy).
CORRUPT = b"%PDF-1.4\n" + b"\x00 not a pdf body" * 64
# A field no document prints: empty in every result.
PO = pb.JobField(name="po_number", data_type="text", instruction="the purchase order number")


async def combined_job(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, files: dict[str, bytes]
) -> tuple[str, dict[str, str]]:
    """A started combined-mode job of `files` (path -> bytes), each analysed as a one-page
    PDF (so a corrupt one reaches the extractor, as one the analysis could not tell is
    broken does); and the file name of each path."""
    created = await job_stub.CreateJob(
        jobs_pb.CreateJobRequest(
            display_name="combined",
            files=[jobs_pb.DeclaredFile(path=p, size_bytes=len(d)) for p, d in files.items()],
        ),
        metadata=USER,
    )
    names = {}
    for target in created.upload_targets:
        upload(settings, target, files[target.path])
        names[target.path] = target.file
    await job_stub.FinalizeUploads(
        jobs_pb.FinalizeUploadsRequest(name=created.job.name), metadata=USER
    )
    for target in created.upload_targets:
        await worker_stub.ReportFileAnalysis(
            worker_pb.ReportFileAnalysisRequest(
                file=target.file,
                status=pb.SourceFile.READY,
                media_type="application/pdf",
                size_bytes=len(files[target.path]),
                page_count=1,
            ),
            metadata=WORKER,
        )
    job = created.job.name
    await job_stub.ConfigureJob(
        jobs_pb.ConfigureJobRequest(
            name=job, fields=[*FIELDS, PO], task_mode=pb.TASK_MODE_COMBINED
        ),
        metadata=USER,
    )
    await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    return job, names


async def redeliver(settings: Settings, task: str) -> None:
    """The task's message again, as JetStream sends it when an ack was lost; returns once
    the worker has handled it."""
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        spec = streams.extract_queue(settings)
        message = extract_messages.ExtractTaskMessage(task=task).SerializeToString()
        await js.publish(spec.subject, message, stream=spec.stream)
        for _ in range(200):
            pending, ack_pending = await streams.consumer_lag(js, spec)
            if pending == ack_pending == 0:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the redelivered task was not handled")
    finally:
        await nc.close()


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_a_corrupt_pdf_is_left_out_of_its_folders_result_saying_why(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    """march/ holds the invoice number in one file, the total in another and a corrupt PDF
    between them: its result has both values, from the two files that can be read, and
    names the corrupt one with its reason; its empty value needs review (the file left out
    may print it). april/, read whole, names no file. A redelivered task changes nothing."""
    job, names = await combined_job(
        job_stub,
        worker_stub,
        settings,
        {
            "march/a.pdf": NUMBER_ONLY,
            "march/b.pdf": CORRUPT,
            "march/c.pdf": TOTAL_ONLY,
            "april/d.pdf": BOTH,
        },
    )
    async with running_worker(worker_settings(settings, jobs)):
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
        march_task = next(t for t in await tasks(job_stub, job) if t.folder == "march")
        await redeliver(settings, march_task.name)

    by_folder = {r.file_paths[0].split("/")[0]: r for r in await results(job_stub, job)}
    assert set(by_folder) == {"march", "april"}
    march, april = by_folder["march"], by_folder["april"]
    assert {k: march.values[k] for k in STORED} == STORED
    assert march.values["po_number"] is None
    assert dict(march.value_sources) == {
        "invoice_number": names["march/a.pdf"],
        "total": names["march/c.pdf"],
    }
    [skipped] = march.skipped_files
    assert skipped.file == names["march/b.pdf"]
    assert skipped.path == "march/b.pdf"
    assert skipped.reason.startswith("cannot read the PDF")
    assert "march/b.pdf" not in skipped.reason  # the path is beside it, not repeated
    # Every file of the task is still listed; the one left out is named apart.
    assert list(march.file_paths) == ["march/a.pdf", "march/b.pdf", "march/c.pdf"]
    assert not april.skipped_files

    # Trust: march's empty value needs review because a file was left out; april's empty
    # value is not flagged for that reason.
    assert march.assessments["po_number"].needs_review
    items = await job_stub.ListReviewItems(
        jobs_pb.ListReviewItemsRequest(parent=job, page_size=100), metadata=USER
    )
    reasons = {(i.result, i.field): list(i.reasons) for i in items.review_items}
    assert "file_skipped" in reasons[(march.name, "po_number")]
    assert "file_skipped" not in reasons.get((april.name, "po_number"), [])

    [task] = [t for t in await tasks(job_stub, job) if t.folder == "march"]
    assert task.status == pb.Task.SUCCEEDED
    assert task.attempts == 1  # a left-out file is no failure of the task


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_folder_none_of_whose_files_can_be_read_fails_naming_each(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    """Every file of march/ is corrupt: its task fails on its first attempt, the error
    naming each file and why; april/ completes, so the job is partially completed."""
    job, _ = await combined_job(
        job_stub,
        worker_stub,
        settings,
        {"march/a.pdf": CORRUPT, "march/b.pdf": CORRUPT[:100], "april/d.pdf": BOTH},
    )
    async with running_worker(worker_settings(settings, jobs)):
        assert (await finished(job_stub, job)).status == pb.Job.PARTIALLY_COMPLETED
    by_folder = {t.folder: t for t in await tasks(job_stub, job)}
    failed = by_folder["march"]
    assert failed.status == pb.Task.FAILED
    assert failed.attempts == 1
    assert failed.last_error.startswith("no file of folder march can be read: ")
    assert "march/a.pdf: cannot read the PDF" in failed.last_error
    assert "march/b.pdf: cannot read the PDF" in failed.last_error
    [result] = await results(job_stub, job)
    assert list(result.file_paths) == ["april/d.pdf"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_gemini_is_sent_only_the_files_that_can_be_read(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    """With Gemini too a file the platform cannot read is left out (in the request it would
    fail the whole call, and its values could not be checked): the model sees the two
    readable files and the result names the third."""
    job, names = await combined_job(
        job_stub,
        worker_stub,
        settings,
        {"march/a.pdf": NUMBER_ONLY, "march/b.pdf": CORRUPT, "march/c.pdf": TOTAL_ONLY},
    )
    answer = {
        "invoice_number": "A-1",
        "total": 10.0,
        "po_number": None,
        "_source_files": {"invoice_number": "march/a.pdf", "total": "march/c.pdf"},
    }
    with RunningStandIn(GeminiStandIn(default=lambda seen: Reply(values=answer))) as gemini:
        async with running_worker(gemini_settings(settings, jobs, gemini)):
            assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
        [seen] = gemini.state.seen
    assert [data for _, data in seen.inline_files] == [NUMBER_ONLY, TOTAL_ONLY]
    [result] = await results(job_stub, job)
    assert {k: result.values[k] for k in STORED} == STORED
    assert dict(result.value_sources) == {
        "invoice_number": names["march/a.pdf"],
        "total": names["march/c.pdf"],
    }
    assert [(s.path, s.file) for s in result.skipped_files] == [
        ("march/b.pdf", names["march/b.pdf"])
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_rerun_that_reads_every_file_clears_the_files_left_out(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    """The files left out are those of the latest extraction: the corrupt file restored in
    storage and the result re-run (forced: the inputs' key is unchanged), the new version
    names none, and its empty value no longer needs review for a file left out."""
    job, names = await combined_job(
        job_stub,
        worker_stub,
        settings,
        {"march/a.pdf": NUMBER_ONLY, "march/b.pdf": CORRUPT, "march/c.pdf": TOTAL_ONLY},
    )
    async with running_worker(worker_settings(settings, jobs)):
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
        [first] = await results(job_stub, job)
        assert len(first.skipped_files) == 1
        _, job_id, _, file_id = names["march/b.pdf"].split("/")
        with make_storage(settings).open_write(storage_keys.upload_key(job_id, file_id)) as handle:
            handle.write(BOTH)
        await job_stub.RerunJob(
            jobs_pb.RerunJobRequest(name=job, results=[first.name], force=True), metadata=USER
        )
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
    [again] = await results(job_stub, job)
    assert again.version == 2
    assert not again.skipped_files
    items = await job_stub.ListReviewItems(
        jobs_pb.ListReviewItemsRequest(parent=job, page_size=100), metadata=USER
    )
    assert not any("file_skipped" in i.reasons for i in items.review_items)
