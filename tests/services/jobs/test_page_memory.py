"""A list page is read from the database a few rows at a time (pages.keyset.read_page): its
memory is about PAGE_BYTES, not page_size rows however large each row is."""

from __future__ import annotations

import tracemalloc
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs.domain.pages import keyset
from tests.conftest import USER
from tests.services.jobs.helpers import WORKER, ready_job, results, started_tasks

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

FIELDS = 100
VERSIONS = 80
MB = 1024 * 1024


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_page_of_huge_rows_holds_about_a_page_in_memory(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    # A result corrected 80 times with 100 values of 10,000 characters (the most a
    # correction takes) has 80 versions of ~1 MB: ListResultVersions at page_size 1000 read
    # them all (`.all()`) to answer the first 3 MiB, ~6 MB of memory a row: 1,000 such rows
    # were ~6 GB per call, as often as their owner asked.
    job = await ready_job(job_stub, worker_stub, settings, files=1)
    fields = [pb.JobField(name=f"f{i}", data_type="text") for i in range(FIELDS)]
    (task,) = await started_tasks(job_stub, settings, job, fields, 1)
    await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
    values = struct_pb2.Struct()
    values.update({"f0": "x"})
    await worker_stub.ReportTaskResult(
        worker_pb.ReportTaskResultRequest(task=task, values=values), metadata=WORKER
    )
    (result,) = await results(job_stub, job)
    mask = field_mask_pb2.FieldMask(paths=[f"values.f{i}" for i in range(FIELDS)])
    for n in range(VERSIONS):
        big = struct_pb2.Struct()
        big.update({f"f{i}": f"{n}-{i}-".ljust(10_000, "v") for i in range(FIELDS)})
        await job_stub.UpdateResult(
            jobs_pb.UpdateResultRequest(
                result=pb.Result(name=result.name, values=big), update_mask=mask
            ),
            metadata=USER,
        )

    tracemalloc.start()
    try:
        page = await job_stub.ListResultVersions(
            jobs_pb.ListResultVersionsRequest(parent=result.name, page_size=1000),
            metadata=USER,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert page.next_page_token
    assert 1 <= len(page.versions) <= keyset.PAGE_BYTES // MB
    # Before: every version read at once, 461 MB measured. Now a few rows at a time (39 MB).
    assert peak < 64 * MB, f"{peak / MB:.0f} MB"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_review_page_reads_each_value_not_each_whole_result(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    # One result of 100 values of 10,000 characters, every one of them below the threshold:
    # 100 review items, and the queue read the result's whole values (and assessments) once
    # per item to show one value of each.
    job = await ready_job(job_stub, worker_stub, settings, files=1)
    fields = [pb.JobField(name=f"f{i}", data_type="text") for i in range(FIELDS)]
    (task,) = await started_tasks(job_stub, settings, job, fields, 1)
    await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
    values = struct_pb2.Struct()
    values.update({f"f{i}": f"{i}-".ljust(10_000, "v") for i in range(FIELDS)})
    low = {f"f{i}": pb.ValueAssessment(confidence=0.1, verified=True) for i in range(FIELDS)}
    await worker_stub.ReportTaskResult(
        worker_pb.ReportTaskResultRequest(task=task, values=values, assessments=low),
        metadata=WORKER,
    )

    tracemalloc.start()
    try:
        page = await job_stub.ListReviewItems(
            jobs_pb.ListReviewItemsRequest(parent=job, page_size=1000), metadata=USER
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert page.total_size == FIELDS
    assert page.review_items
    assert page.review_items[0].value.string_value.endswith("v")
    # Before: 196 MB (a page of 2,002 such items ~4 GB). Now each result once: 2 MB.
    assert peak < 64 * MB, f"{peak / MB:.0f} MB"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_export_of_huge_results_holds_a_page_budget_in_memory(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    # 40 results of 100 values of 10,000 characters: the export read them 500 at a time,
    # all 40 at once here, and sent their CSV as one 40 MB message, over gRPC's 32 MiB: the
    # export failed (RESOURCE_EXHAUSTED). A page of 500 was ~3 GB in memory. Now 35 MB.
    count = 40
    job = await _big_results(job_stub, worker_stub, settings, count)

    tracemalloc.start()
    try:
        size = 0
        async for chunk in job_stub.ExportResults(
            jobs_pb.ExportResultsRequest(name=job, format="csv"), metadata=USER
        ):
            size += len(chunk.data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > count * FIELDS * 10_000  # every row is in it
    assert peak < 64 * MB, f"{peak / MB:.0f} MB"


async def _big_results(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, count: int
) -> str:
    """A job of `count` results of FIELDS values of 10,000 characters (~1 MB each)."""
    job = await ready_job(job_stub, worker_stub, settings, files=count)
    fields = [pb.JobField(name=f"f{i}", data_type="text") for i in range(FIELDS)]
    for n, task in enumerate(await started_tasks(job_stub, settings, job, fields, count)):
        await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
        values = struct_pb2.Struct()
        values.update({f"f{i}": f"{n}-{i}-".ljust(10_000, "v") for i in range(FIELDS)})
        await worker_stub.ReportTaskResult(
            worker_pb.ReportTaskResultRequest(task=task, values=values), metadata=WORKER
        )
    return job


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_page_of_huge_golden_documents_holds_about_a_page_in_memory(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, channel: grpc.aio.Channel
) -> None:
    # Golden documents keep their result's values: 40 of ~1 MB, listed at page_size 1000,
    # were all read at once (77 MB; ~2 GB for 1,000) to answer three of them.
    count = 40
    job = await _big_results(job_stub, worker_stub, settings, count)
    templates = jobs_grpc.TemplateServiceStub(channel)
    fields = [pb.JobField(name=f"f{i}", data_type="text") for i in range(FIELDS)]
    template = await templates.CreateTemplate(
        jobs_pb.CreateTemplateRequest(template=pb.Template(display_name="Big", fields=fields)),
        metadata=USER,
    )
    for result in await _all_results(job_stub, job):
        await templates.CreateGoldenDocument(
            jobs_pb.CreateGoldenDocumentRequest(
                parent=template.name, golden_document=pb.GoldenDocument(result=result.name)
            ),
            metadata=USER,
        )

    tracemalloc.start()
    try:
        page = await templates.ListGoldenDocuments(
            jobs_pb.ListGoldenDocumentsRequest(parent=template.name, page_size=1000),
            metadata=USER,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert page.next_page_token
    assert peak < 64 * MB, f"{peak / MB:.0f} MB"


async def _all_results(job_stub: JobStub, job: str) -> list[pb.Result]:
    """Every result of `job`, page by page (a page of ~1 MB results holds three)."""
    found: list[pb.Result] = []
    token = ""
    while True:
        page = await job_stub.ListResults(
            jobs_pb.ListResultsRequest(parent=job, page_size=1000, page_token=token),
            metadata=USER,
        )
        found += page.results
        token = page.next_page_token
        if not token:
            return found
