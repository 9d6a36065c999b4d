"""Re-runs and golden-set scoring (#16) through NATS, the real jobs service and the real
extract worker with the offline extractor."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import grpc
import nats
import pytest
from google.protobuf import field_mask_pb2, json_format

from bytereview.core import Settings, streams
from bytereview.core.fair_pull import FairPuller
from bytereview.core.storage import make_storage
from bytereview.core.worker_runtime import Delivery
from bytereview.core.workers import JobsCalls
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.extract.offline.extractor import OfflineExtractor
from services.extract.worker import ExtractHandler, rate_controller
from services.jobs import RunningJobsService
from tests.conftest import USER
from tests.services.extract.test_worker import (
    FIELDS,
    STORED,
    finished,
    results,
    running_worker,
    start,
    worker_settings,
)
from tests.services.jobs.helpers import WORKER

if TYPE_CHECKING:
    from bytereview.jobs.v1.jobs_service_pb2_grpc import (
        TemplateServiceAsyncStub as TemplateStub,
    )
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _versions(job_stub: JobStub, result: str) -> list[pb.ResultVersion]:
    got = await job_stub.ListResultVersions(
        jobs_pb.ListResultVersionsRequest(parent=result), metadata=USER
    )
    return list(got.versions)


async def _deliveries(settings: Settings) -> tuple[int, int, int]:
    """The extract queue's (stream sequence delivered, deliveries made, messages held),
    over every consumer (the queue has one per tenant lane)."""
    spec = streams.extract_queue(settings)
    nc = await nats.connect(settings.nats_url)
    try:
        infos = await nc.jetstream().consumers_info(spec.stream)
        counts = await streams.queue_counts(nc.jetstream(), spec.stream)
    finally:
        await nc.close()
    assert counts is not None
    stream_seq = max(int(getattr(i.delivered, "stream_seq", 0) or 0) for i in infos)
    deliveries = sum(int(getattr(i.delivered, "consumer_seq", 0) or 0) for i in infos)
    return stream_seq, deliveries, counts.messages


async def _queue_settled(settings: Settings, timeout: float = 60) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        stream_seq, deliveries, held = await _deliveries(settings)
        if not held:
            return stream_seq, deliveries
        if time.monotonic() > deadline:
            raise AssertionError("the extract queue still holds messages")
        await asyncio.sleep(0.2)


# The redelivery comes one ack wait after the "dead" worker's delivery: 2 s, not 5.
@pytest.mark.settings(ack_wait_seconds=2)
async def test_a_redelivered_rerun_makes_one_new_version(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, jobs: RunningJobsService
) -> None:
    job = await start(job_stub, worker_stub, settings)
    config = worker_settings(settings, jobs)
    async with running_worker(config):
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
    (result,) = await results(job_stub, job)
    assert dict(result.values) == STORED
    corrected = await job_stub.UpdateResult(
        jobs_pb.UpdateResultRequest(
            result=pb.Result(
                name=result.name, values=json_format.ParseDict({"total": "1"}, pb.Result().values)
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["values.total"]),
            reason="wrong",
        ),
        metadata=USER,
    )
    assert corrected.version == 2

    # Unchanged file and fields: skipped. Forced: queued once.
    skipped = await job_stub.RerunJob(
        jobs_pb.RerunJobRequest(name=job, files=list(result.files)), metadata=USER
    )
    assert list(skipped.skipped_tasks) == [result.task]
    forced = await job_stub.RerunJob(
        jobs_pb.RerunJobRequest(name=job, files=list(result.files), force=True), metadata=USER
    )
    assert list(forced.queued_tasks) == [result.task]

    # First delivery: the real handler extracts and reports, then the worker "dies" before
    # it acks. JetStream delivers the message again after AckWait.
    spec = streams.extract_queue(settings)
    nc = await nats.connect(settings.nats_url)
    puller = FairPuller(nc=nc, js=nc.jetstream(), spec=spec)  # its tenant's lane
    (msg,) = await puller.fetch(1, (), wait=10)
    extractor = OfflineExtractor()
    async with grpc.aio.insecure_channel(config.jobs_addr) as channel:
        handler = ExtractHandler(
            storage=make_storage(config),
            extractor=extractor,
            calls=JobsCalls(worker_grpc.JobWorkerServiceStub(channel), WORKER, timeout=30),
            rate=rate_controller(config),
        )
        await handler(
            Delivery(
                data=msg.data, subject=msg.subject, attempt=1, max_deliver=settings.max_deliver
            )
        )
    await extractor.aclose()
    await nc.close()  # unacknowledged
    (after,) = await results(job_stub, job)
    assert after.version == 3
    assert dict(after.values) == STORED  # the re-run replaced the correction
    assert list(after.corrected_fields) == []

    # The real worker receives the redelivery: the task is settled, nothing is extracted.
    stream_seq, deliveries, held = await _deliveries(settings)
    assert held == 1
    async with running_worker(config):
        # One delivery more of the same message, and no new message.
        assert await _queue_settled(settings) == (stream_seq, deliveries + 1)
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
    versions = await _versions(job_stub, result.name)
    assert [(v.version, pb.ResultVersion.Kind.Name(v.kind)) for v in versions] == [
        (1, "EXTRACTED"),
        (2, "CORRECTED"),
        (3, "RERUN"),
    ]


async def _scored(templates: TemplateStub, version: str, timeout: float = 60) -> pb.TemplateVersion:
    deadline = time.monotonic() + timeout
    while True:
        got = await templates.GetTemplateVersion(
            jobs_pb.GetTemplateVersionRequest(name=version), metadata=USER
        )
        if got.score.state not in (pb.TemplateScore.STATE_UNSPECIFIED, pb.TemplateScore.RUNNING):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{version} is still being scored: {got.score}")
        await asyncio.sleep(0.2)


async def test_golden_set_scores_each_template_version(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    channel: grpc.aio.Channel,
) -> None:
    templates = jobs_grpc.TemplateServiceStub(channel)
    template = await templates.CreateTemplate(
        jobs_pb.CreateTemplateRequest(template=pb.Template(display_name="Invoices", fields=FIELDS)),
        metadata=USER,
    )
    job = await start(job_stub, worker_stub, settings, files=2)
    config = worker_settings(settings, jobs)
    async with running_worker(config):
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED
        first, second = await results(job_stub, job)
        # A person checked both; the second's number was really "A-9" on paper.
        await job_stub.UpdateResult(
            jobs_pb.UpdateResultRequest(
                result=pb.Result(
                    name=second.name,
                    values=json_format.ParseDict({"invoice_number": "A-9"}, pb.Result().values),
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["values.invoice_number"]),
            ),
            metadata=USER,
        )
        for result in (first, second):
            await templates.CreateGoldenDocument(
                jobs_pb.CreateGoldenDocumentRequest(
                    parent=template.name, golden_document=pb.GoldenDocument(result=result.name)
                ),
                metadata=USER,
            )

        # On demand: version 1 extracts the golden files again through the queue.
        started = await templates.ScoreTemplateVersion(
            jobs_pb.ScoreTemplateVersionRequest(name=template.current_version), metadata=USER
        )
        assert started.score.state == pb.TemplateScore.RUNNING
        v1 = await _scored(templates, template.current_version)
        assert v1.score.state == pb.TemplateScore.SUCCEEDED, v1.score
        assert v1.score.golden_documents == 2
        assert (v1.score.values_compared, v1.score.values_correct) == (4, 3)
        assert v1.score.accuracy == pytest.approx(0.75)
        by_field = {f.field: (f.compared, f.correct) for f in v1.score.field_scores}
        assert by_field == {"invoice_number": (2, 1), "total": (2, 2)}
        # The scoring run is a job of the owner's, not in their list of jobs.
        run = await job_stub.GetJob(jobs_pb.GetJobRequest(name=v1.score.job), metadata=USER)
        assert run.status == pb.Job.COMPLETED
        listed = await job_stub.ListJobs(jobs_pb.ListJobsRequest(), metadata=USER)
        assert [j.name for j in listed.jobs] == [job]

        # Saving new fields makes version 2, scored right away when asked: reading the
        # total as a date finds none, and the comparison shows which field got worse.
        changed = await templates.UpdateTemplate(
            jobs_pb.UpdateTemplateRequest(
                template=pb.Template(
                    name=template.name,
                    fields=[FIELDS[0], pb.JobField(name="total", data_type="date_ymd")],
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["fields"]),
                score_new_version=True,
            ),
            metadata=USER,
        )
        v2 = await _scored(templates, changed.current_version)
    assert v2.score.state == pb.TemplateScore.SUCCEEDED, v2.score
    assert {f.field: f.correct for f in v2.score.field_scores} == {
        "invoice_number": 1,
        "total": 0,
    }
    compared = await templates.CompareTemplateVersions(
        jobs_pb.CompareTemplateVersionsRequest(name=changed.current_version), metadata=USER
    )
    assert compared.base.name == template.current_version
    assert compared.accuracy_change == pytest.approx(0.25 - 0.75)
    total = next(f for f in compared.fields if f.field == "total")
    assert (total.base.data_type, total.current.data_type) == ("currency", "date_ymd")
    assert (total.base_accuracy, total.accuracy) == (1.0, 0.0)
