"""Result versions, re-runs, template versions and golden documents (#16) through the real
jobs service on both databases. The extract worker's reports are sent as the worker sends
them; tests/services/extract/test_rerun_and_score.py runs the real worker through NATS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format, struct_pb2

from bytereview.core import streams
from bytereview.core.settings import Settings
from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from tests.conftest import USER
from tests.identity import IdentityProvider
from tests.services.jobs.helpers import WORKER, completed_job, pull

if TYPE_CHECKING:
    from bytereview.jobs.v1.jobs_service_pb2_grpc import (
        TemplateServiceAsyncStub as TemplateStub,
    )
    from tests.services.jobs.helpers import JobStub, WorkerStub

FIELDS = [
    pb.JobField(name="number", data_type="text"),
    pb.JobField(name="total", data_type="currency"),
]


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


async def _results(stub: JobStub, job: str) -> list[pb.Result]:
    got = await stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    return list(got.results)


async def _versions(stub: JobStub, result: str) -> list[pb.ResultVersion]:
    got = await stub.ListResultVersions(
        jobs_pb.ListResultVersionsRequest(parent=result), metadata=USER
    )
    return list(got.versions)


async def _correct(stub: JobStub, result: str, values: dict[str, Any], reason: str) -> pb.Result:
    return await stub.UpdateResult(
        jobs_pb.UpdateResultRequest(
            result=pb.Result(name=result, values=_struct(values)),
            update_mask=field_mask_pb2.FieldMask(paths=[f"values.{k}" for k in values]),
            reason=reason,
        ),
        metadata=USER,
    )


async def _events(stub: JobStub, job: str) -> list[pb.JobEvent]:
    got = await stub.ListJobEvents(
        jobs_pb.ListJobEventsRequest(parent=job, page_size=1000), metadata=USER
    )
    return list(got.events)


async def test_history_and_revert(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await completed_job(job_stub, worker_stub, settings, files=1)
    (result,) = await _results(job_stub, job)
    assert result.version == 1
    (first,) = await _versions(job_stub, result.name)
    assert first.name == f"{result.name}/versions/1"
    assert first.kind == pb.ResultVersion.EXTRACTED
    assert first.actor == "system"
    extracted = json_format.MessageToDict(first.values)

    corrected = await _correct(job_stub, result.name, {"total": "12.00"}, "typo on the scan")
    assert (corrected.version, list(corrected.corrected_fields)) == (2, ["total"])
    again = await _correct(job_stub, result.name, {"number": "INV-7"}, "")
    assert (again.version, sorted(again.corrected_fields)) == (3, ["number", "total"])
    # Sending the values it already has changes nothing: no version, no event.
    same = await _correct(job_stub, result.name, {"number": "INV-7"}, "again")
    assert same.version == 3

    versions = await _versions(job_stub, result.name)
    assert [v.version for v in versions] == [1, 2, 3]
    second = versions[1]
    assert second.kind == pb.ResultVersion.CORRECTED
    assert second.reason == "typo on the scan"
    assert second.actor != "system"
    (change,) = second.changes
    assert change.field == "total"
    assert change.old_value.string_value == extracted["total"]
    assert change.new_value.string_value == "12.00"

    reverted = await job_stub.RevertResult(
        jobs_pb.RevertResultRequest(
            name=result.name, version=f"{result.name}/versions/1", reason="both wrong"
        ),
        metadata=USER,
    )
    assert reverted.version == 4
    assert json_format.MessageToDict(reverted.values) == extracted
    assert list(reverted.corrected_fields) == []
    fourth = await job_stub.GetResultVersion(
        jobs_pb.GetResultVersionRequest(name=f"{result.name}/versions/4"), metadata=USER
    )
    assert fourth.kind == pb.ResultVersion.REVERTED
    assert fourth.restored_version == 1
    assert {c.field for c in fourth.changes} == {"number", "total"}
    # Reverting to what it already holds adds nothing; the earlier versions are untouched.
    same_again = await job_stub.RevertResult(
        jobs_pb.RevertResultRequest(name=result.name, version=f"{result.name}/versions/1"),
        metadata=USER,
    )
    assert same_again.version == 4
    assert [v.version for v in await _versions(job_stub, result.name)] == [1, 2, 3, 4]

    # Audit events: who changed what, old -> new, why.
    kinds = [
        (e.kind, e.message) for e in await _events(job_stub, job) if e.kind.startswith("result.")
    ]
    assert kinds[0][0] == "result.edited"
    assert "total" in kinds[0][1]
    assert "12.00" in kinds[0][1]
    assert "typo on the scan" in kinds[0][1]
    assert kinds[-1][0] == "result.reverted"
    assert kinds[-1][1].startswith("to v1")

    # Paging, and bad names.
    page = await job_stub.ListResultVersions(
        jobs_pb.ListResultVersionsRequest(parent=result.name, page_size=3), metadata=USER
    )
    assert len(page.versions) == 3
    assert page.next_page_token
    for bad in (f"{result.name}/versions/0", f"{result.name}/versions/x"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await job_stub.GetResultVersion(
                jobs_pb.GetResultVersionRequest(name=bad), metadata=USER
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.GetResultVersion(
            jobs_pb.GetResultVersionRequest(name=f"{result.name}/versions/9"), metadata=USER
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def _worker_runs(
    worker_stub: WorkerStub, settings: Settings, count: int, values: dict[str, Any]
) -> list[str]:
    """Take `count` extract messages off the queue and report `values` for each."""
    tasks = [
        extract_messages.ExtractTaskMessage.FromString(m).task
        for m in await pull(settings, streams.extract_queue(settings), count)
    ]
    for task in tasks:
        begin = await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
        assert begin.proceed
        await worker_stub.ReportTaskResult(
            worker_pb.ReportTaskResultRequest(task=task, values=_struct(values)), metadata=WORKER
        )
    return tasks


async def _template(stub: TemplateStub, fields: list[pb.JobField]) -> pb.Template:
    return await stub.CreateTemplate(
        jobs_pb.CreateTemplateRequest(template=pb.Template(display_name="Invoices", fields=fields)),
        metadata=USER,
    )


async def test_rerun_adds_versions_and_skips_unchanged_inputs(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    channel: grpc.aio.Channel,
) -> None:
    job = await completed_job(job_stub, worker_stub, settings, files=2)
    first, second = await _results(job_stub, job)
    await _correct(job_stub, first.name, {"total": "1.00"}, "")
    files = list(first.files)

    # Same files, same fields: nothing to extract again (nothing charged twice).
    same = await job_stub.RerunJob(jobs_pb.RerunJobRequest(name=job, files=files), metadata=USER)
    assert list(same.queued_tasks) == []
    assert list(same.skipped_tasks) == [first.task]
    assert same.job.status == pb.Job.COMPLETED

    # Forced, and only the number is taken from the new answer.
    forced = await job_stub.RerunJob(
        jobs_pb.RerunJobRequest(name=job, results=[first.name], fields=["number"], force=True),
        metadata=USER,
    )
    assert list(forced.queued_tasks) == [first.task]
    assert forced.job.status == pb.Job.QUEUED
    with pytest.raises(grpc.aio.AioRpcError) as err:  # not while it runs
        await job_stub.RerunJob(jobs_pb.RerunJobRequest(name=job, files=files), metadata=USER)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await _worker_runs(worker_stub, settings, 1, {"number": "N-2", "total": "5.00"})
    (after, _) = await _results(job_stub, job)
    assert after.name == first.name  # the same row, a new version
    assert after.version == 3
    assert json_format.MessageToDict(after.values) == {"number": "N-2", "total": "1.00"}
    assert list(after.corrected_fields) == ["total"]  # the correction was kept
    third = (await _versions(job_stub, first.name))[-1]
    assert third.kind == pb.ResultVersion.RERUN
    assert [c.field for c in third.changes] == ["number"]
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.status == pb.Job.COMPLETED
    assert got.counters.tasks_succeeded == 2

    # A new template version: the job's fields follow it and the chosen results re-run.
    templates = jobs_grpc.TemplateServiceStub(channel)
    template = await _template(templates, FIELDS)
    changed = await templates.UpdateTemplate(
        jobs_pb.UpdateTemplateRequest(
            template=pb.Template(
                name=template.name,
                fields=[*FIELDS, pb.JobField(name="vat", data_type="text")],
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["fields"]),
        ),
        metadata=USER,
    )
    assert changed.current_version == f"{template.name}/versions/2"
    rerun = await job_stub.RerunJob(
        jobs_pb.RerunJobRequest(
            name=job, results=[second.name], template_version=changed.current_version
        ),
        metadata=USER,
    )
    assert list(rerun.queued_tasks) == [second.task]
    assert rerun.job.template_version == changed.current_version
    assert [f.name for f in rerun.job.fields] == ["number", "total", "vat"]
    await _worker_runs(worker_stub, settings, 1, {"number": "B", "total": "2.00", "vat": "V1"})
    latest = (await _versions(job_stub, second.name))[-1]
    assert latest.template_version == changed.current_version
    assert json_format.MessageToDict(latest.values)["vat"] == "V1"


async def test_rerun_failed_tasks_and_bad_requests(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await completed_job(job_stub, worker_stub, settings, files=1)
    for request, code in [
        (jobs_pb.RerunJobRequest(name=job), grpc.StatusCode.INVALID_ARGUMENT),
        (jobs_pb.RerunJobRequest(name=job, fields=["number"]), grpc.StatusCode.INVALID_ARGUMENT),
        (
            jobs_pb.RerunJobRequest(name=job, results=[f"{job}/results/{'0' * 32}"] * 10_001),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (jobs_pb.RerunJobRequest(name=job, failed_tasks=True), grpc.StatusCode.FAILED_PRECONDITION),
        (
            jobs_pb.RerunJobRequest(name=job, files=[f"{job}/files/{'0' * 32}"]),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            # A file of another job: not a file of this one (as the contract says: 404).
            jobs_pb.RerunJobRequest(name=job, files=[f"jobs/{'0' * 32}/files/{'0' * 32}"]),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            jobs_pb.RerunJobRequest(
                name=job, failed_tasks=True, template_version=f"templates/{'0' * 32}/versions/1"
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await job_stub.RerunJob(request, metadata=USER)
        assert err.value.code() == code, request


async def test_template_versions_and_jobs_record_theirs(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, channel: grpc.aio.Channel
) -> None:
    from tests.services.jobs.helpers import ready_job

    templates = jobs_grpc.TemplateServiceStub(channel)
    template = await _template(templates, FIELDS)
    assert template.current_version == f"{template.name}/versions/1"
    renamed = await templates.UpdateTemplate(
        jobs_pb.UpdateTemplateRequest(
            template=pb.Template(name=template.name, description="only words"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
        metadata=USER,
    )
    assert renamed.current_version == template.current_version  # fields unchanged
    v2_fields = [pb.JobField(name="number", data_type="text", instruction="top right")]
    await templates.UpdateTemplate(
        jobs_pb.UpdateTemplateRequest(
            template=pb.Template(name=template.name, fields=v2_fields),
            update_mask=field_mask_pb2.FieldMask(paths=["fields"]),
        ),
        metadata=USER,
    )
    listed = await templates.ListTemplateVersions(
        jobs_pb.ListTemplateVersionsRequest(parent=template.name), metadata=USER
    )
    assert [v.version for v in listed.versions] == [2, 1]
    assert list(listed.versions[1].fields) == FIELDS
    assert not listed.versions[0].HasField("score")  # never scored

    job = await ready_job(job_stub, worker_stub, settings)
    configured = await job_stub.ConfigureJob(
        jobs_pb.ConfigureJobRequest(name=job, template=template.name), metadata=USER
    )
    assert configured.template_version == f"{template.name}/versions/2"
    assert list(configured.fields) == v2_fields
    older = await job_stub.ConfigureJob(
        jobs_pb.ConfigureJobRequest(
            name=job, template=template.name, template_version=f"{template.name}/versions/1"
        ),
        metadata=USER,
    )
    assert older.template_version == f"{template.name}/versions/1"
    assert list(older.fields) == FIELDS
    # Another template's version: no such version of this one (NOT_FOUND, as a missing job).
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.ConfigureJob(
            jobs_pb.ConfigureJobRequest(
                name=job,
                template=template.name,
                template_version=f"templates/{'0' * 32}/versions/1",
            ),
            metadata=USER,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    compared = await templates.CompareTemplateVersions(
        jobs_pb.CompareTemplateVersionsRequest(name=f"{template.name}/versions/2"), metadata=USER
    )
    assert compared.base.version == 1
    assert [(f.field, f.HasField("base"), f.HasField("current")) for f in compared.fields] == [
        ("number", True, True),
        ("total", True, False),
    ]
    assert not compared.HasField("accuracy_change")  # neither was scored


async def test_golden_documents(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, channel: grpc.aio.Channel
) -> None:
    templates = jobs_grpc.TemplateServiceStub(channel)
    template = await _template(templates, FIELDS)
    job = await completed_job(job_stub, worker_stub, settings, files=1)
    (result,) = await _results(job_stub, job)
    await _correct(job_stub, result.name, {"total": "7.00"}, "checked")
    golden = await templates.CreateGoldenDocument(
        jobs_pb.CreateGoldenDocumentRequest(
            parent=template.name, golden_document=pb.GoldenDocument(result=result.name)
        ),
        metadata=USER,
    )
    assert golden.name.startswith(f"{template.name}/goldenDocuments/")
    assert json_format.MessageToDict(golden.expected_values)["total"] == "7.00"
    assert list(golden.file_paths) == list(result.file_paths)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await templates.CreateGoldenDocument(
            jobs_pb.CreateGoldenDocumentRequest(
                parent=template.name, golden_document=pb.GoldenDocument(result=result.name)
            ),
            metadata=USER,
        )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    listed = await templates.ListGoldenDocuments(
        jobs_pb.ListGoldenDocumentsRequest(parent=template.name), metadata=USER
    )
    assert [g.name for g in listed.golden_documents] == [golden.name]
    await templates.DeleteGoldenDocument(
        jobs_pb.DeleteGoldenDocumentRequest(name=golden.name), metadata=USER
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:  # no golden set: nothing to score
        await templates.ScoreTemplateVersion(
            jobs_pb.ScoreTemplateVersionRequest(name=template.current_version), metadata=USER
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_every_new_resource_is_the_owners_alone(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    channel: grpc.aio.Channel,
    idp: IdentityProvider,
) -> None:
    """Another user gets NOT_FOUND on each, with the message a missing one gets (no oracle)."""
    mallory = idp.metadata("mallory")
    templates = jobs_grpc.TemplateServiceStub(channel)
    template = await _template(templates, FIELDS)
    job = await completed_job(job_stub, worker_stub, settings, files=1)
    (result,) = await _results(job_stub, job)
    golden = await templates.CreateGoldenDocument(
        jobs_pb.CreateGoldenDocumentRequest(
            parent=template.name, golden_document=pb.GoldenDocument(result=result.name)
        ),
        metadata=USER,
    )
    theirs = await templates.CreateTemplate(
        jobs_pb.CreateTemplateRequest(template=pb.Template(display_name="Mine", fields=FIELDS)),
        metadata=mallory,
    )
    missing_job, missing_template = f"jobs/{'0' * 32}", f"templates/{'0' * 32}"
    version = template.current_version

    def swap(name: str) -> str:
        return name.replace(job, missing_job).replace(template.name, missing_template)

    calls: list[tuple[Any, Any]] = [
        (job_stub.GetResult, jobs_pb.GetResultRequest(name=result.name)),
        (job_stub.ListResultVersions, jobs_pb.ListResultVersionsRequest(parent=result.name)),
        (
            job_stub.GetResultVersion,
            jobs_pb.GetResultVersionRequest(name=f"{result.name}/versions/1"),
        ),
        (
            job_stub.RevertResult,
            jobs_pb.RevertResultRequest(name=result.name, version=f"{result.name}/versions/1"),
        ),
        (job_stub.RerunJob, jobs_pb.RerunJobRequest(name=job, failed_tasks=True)),
        (templates.ListTemplateVersions, jobs_pb.ListTemplateVersionsRequest(parent=template.name)),
        (templates.GetTemplateVersion, jobs_pb.GetTemplateVersionRequest(name=version)),
        (templates.ScoreTemplateVersion, jobs_pb.ScoreTemplateVersionRequest(name=version)),
        (
            templates.CompareTemplateVersions,
            jobs_pb.CompareTemplateVersionsRequest(name=version, base_version=version),
        ),
        (templates.ListGoldenDocuments, jobs_pb.ListGoldenDocumentsRequest(parent=template.name)),
        (templates.DeleteGoldenDocument, jobs_pb.DeleteGoldenDocumentRequest(name=golden.name)),
        (
            templates.CreateGoldenDocument,
            jobs_pb.CreateGoldenDocumentRequest(
                parent=template.name, golden_document=pb.GoldenDocument(result=result.name)
            ),
        ),
    ]
    for method, request in calls:
        with pytest.raises(grpc.aio.AioRpcError) as theirs_err:
            await method(request, metadata=mallory)
        assert theirs_err.value.code() == grpc.StatusCode.NOT_FOUND, request
        missing = type(request)()
        missing.CopyFrom(request)
        for field in ("name", "parent", "version", "base_version"):
            if hasattr(missing, field) and getattr(missing, field):
                setattr(missing, field, swap(getattr(missing, field)))
        if isinstance(missing, jobs_pb.CreateGoldenDocumentRequest):
            missing.golden_document.result = swap(missing.golden_document.result)
        with pytest.raises(grpc.aio.AioRpcError) as missing_err:
            await method(missing, metadata=USER)
        assert missing_err.value.code() == grpc.StatusCode.NOT_FOUND, missing
        assert swap(theirs_err.value.details() or "") == missing_err.value.details(), request
    # Mallory cannot make my result golden for her template, nor her result for mine.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await templates.CreateGoldenDocument(
            jobs_pb.CreateGoldenDocumentRequest(
                parent=theirs.name, golden_document=pb.GoldenDocument(result=result.name)
            ),
            metadata=mallory,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # Nothing changed for the owner.
    assert [v.version for v in await _versions(job_stub, result.name)] == [1]


async def test_new_fields_to_score_without_golden_documents_change_nothing(
    channel: grpc.aio.Channel,
) -> None:
    # The FAILED_PRECONDITION came after the new version was committed: the caller was
    # told no, and the template had changed all the same.
    templates = jobs_grpc.TemplateServiceStub(channel)
    template = await _template(templates, FIELDS)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await templates.UpdateTemplate(
            jobs_pb.UpdateTemplateRequest(
                template=pb.Template(
                    name=template.name, fields=[pb.JobField(name="other", data_type="text")]
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["fields"]),
                score_new_version=True,
            ),
            metadata=USER,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "golden" in (err.value.details() or "")
    after = await templates.GetTemplate(
        jobs_pb.GetTemplateRequest(name=template.name), metadata=USER
    )
    assert (list(after.fields), after.current_version) == (FIELDS, template.current_version)
    versions = await templates.ListTemplateVersions(
        jobs_pb.ListTemplateVersionsRequest(parent=template.name), metadata=USER
    )
    assert len(versions.versions) == 1
