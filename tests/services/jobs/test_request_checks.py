"""What a raw gRPC client can put on the wire that no servicer can use (core.request_checks):
each was INTERNAL or UNKNOWN; now INVALID_ARGUMENT naming the field, and nothing written."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import struct_pb2

from bytereview.jobs.v1 import admin_service_pb2 as admin_pb
from bytereview.jobs.v1 import admin_service_pb2_grpc as admin_grpc
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from tests.conftest import USER
from tests.services.jobs.helpers import FIELDS, WORKER, running_tasks

if TYPE_CHECKING:
    from bytereview.core.settings import Settings
    from tests.services.jobs.helpers import JobStub, WorkerStub


async def _invalid(call: object, *, mentions: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert mentions in (err.value.details() or ""), err.value.details()


async def _job(job_stub: JobStub) -> str:
    created = await job_stub.CreateJob(
        jobs_pb.CreateJobRequest(files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=3)]),
        metadata=USER,
    )
    return created.job.name


async def _job_count(job_stub: JobStub) -> int:
    return len((await job_stub.ListJobs(jobs_pb.ListJobsRequest(), metadata=USER)).jobs)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_enum_number_the_proto_does_not_define_is_invalid_argument(
    job_stub: JobStub, worker_stub: WorkerStub, channel: grpc.aio.Channel
) -> None:
    job = await _job(job_stub)
    status: pb.Job.Status.ValueType = 99  # type: ignore[assignment]
    await _invalid(
        job_stub.ListJobs(jobs_pb.ListJobsRequest(status=status), metadata=USER),
        mentions="status: 99",
    )
    mode: pb.TaskMode.ValueType = -1  # type: ignore[assignment]
    await _invalid(
        job_stub.ConfigureJob(
            jobs_pb.ConfigureJobRequest(name=job, fields=FIELDS, task_mode=mode), metadata=USER
        ),
        mentions="task_mode: -1",
    )
    # Inside a repeated message field too.
    await _invalid(
        job_stub.PlanTasks(
            jobs_pb.PlanTasksRequest(
                name=job, folder_rules=[pb.FolderRule(folder="a", task_mode=mode)]
            ),
            metadata=USER,
        ),
        mentions="folder_rules[0].task_mode",
    )
    admin = admin_grpc.AdminServiceStub(channel)
    await _invalid(
        admin.ListAllJobs(
            admin_pb.ListAllJobsRequest(statuses=[pb.Job.READY, status]), metadata=USER
        ),
        mentions="statuses[1]: 99",
    )
    failure: worker_pb.ReportTaskFailureRequest.FailureClass.ValueType = 7  # type: ignore[assignment]
    await _invalid(
        worker_stub.ReportTaskFailure(
            worker_pb.ReportTaskFailureRequest(
                task=f"{job}/tasks/{'0' * 32}", failure_class=failure
            ),
            metadata=WORKER,
        ),
        mentions="failure_class must be",
    )
    file_status: pb.SourceFile.Status.ValueType = 42  # type: ignore[assignment]
    await _invalid(
        worker_stub.ReportFileAnalysis(
            worker_pb.ReportFileAnalysisRequest(file=f"{job}/files/{'0' * 32}", status=file_status),
            metadata=WORKER,
        ),
        mentions="status 42 is not a file status",
    )
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.status == pb.Job.PENDING_UPLOAD
    assert not got.fields


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bytes_that_are_not_the_request_message_are_invalid_argument(
    channel: grpc.aio.Channel,
) -> None:
    # A string field holding a lone UTF-16 surrogate's bytes; a truncated varint.
    for raw in (b"\x0a\x03\xed\xa0\x80", b"\x08" + b"\xff" * 10, b"\xff\xff\xff"):
        get_job = channel.unary_unary(
            "/bytereview.jobs.v1.JobService/GetJob",
            request_serializer=bytes,
            response_deserializer=pb.Job.FromString,
        )
        await _invalid(
            get_job(raw, metadata=USER), mentions="not a valid bytereview.jobs.v1.GetJobRequest"
        )
        # The credential is checked first: a caller without one learns nothing more.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await get_job(raw)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_nul_character_is_invalid_argument_and_nothing_is_written(
    job_stub: JobStub, channel: grpc.aio.Channel
) -> None:
    # PostgreSQL's text cannot hold U+0000: each of these was an INTERNAL error there.
    job = await _job(job_stub)
    before = await _job_count(job_stub)
    declared = [jobs_pb.DeclaredFile(path="a.pdf", size_bytes=3)]
    for request, mentions in (
        (jobs_pb.CreateJobRequest(display_name="a\x00b", files=declared), "display_name"),
        (jobs_pb.CreateJobRequest(request_id="\x00", files=declared), "request_id"),
        (
            jobs_pb.CreateJobRequest(
                files=[jobs_pb.DeclaredFile(path="a.pdf", size_bytes=3, content_type="a\x00")]
            ),
            "files[0].content_type",
        ),
    ):
        await _invalid(job_stub.CreateJob(request, metadata=USER), mentions=mentions)
    assert await _job_count(job_stub) == before
    fields = [pb.JobField(name="total", data_type="currency", instruction="the\x00total")]
    await _invalid(
        job_stub.ConfigureJob(jobs_pb.ConfigureJobRequest(name=job, fields=fields), metadata=USER),
        mentions="fields[0].instruction",
    )
    templates = jobs_grpc.TemplateServiceStub(channel)
    await _invalid(
        templates.CreateTemplate(
            jobs_pb.CreateTemplateRequest(
                template=pb.Template(display_name="t", description="\x00", fields=FIELDS)
            ),
            metadata=USER,
        ),
        mentions="template.description",
    )
    listed = await templates.ListTemplates(jobs_pb.ListTemplatesRequest(), metadata=USER)
    assert not listed.templates
    # Struct keys and values, at any depth.
    nested = struct_pb2.Struct()
    nested.update({"total": ["ok", {"deep": "x\x00"}]})
    keyed = struct_pb2.Struct()
    keyed.update({"to\x00tal": "1"})
    for values, mentions in ((nested, "deep"), (keyed, "to\\x00tal")):
        await _invalid(
            job_stub.UpdateResult(
                jobs_pb.UpdateResultRequest(
                    result=pb.Result(name=f"{job}/results/r", values=values)
                ),
                metadata=USER,
            ),
            mentions=mentions,
        )
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert not got.fields


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_error_quoting_a_huge_input_keeps_its_code(channel: grpc.aio.Channel) -> None:
    # The message quoted the whole data type: over gRPC's metadata limit, the call failed as
    # RESOURCE_EXHAUSTED (the gateway's 429) instead of INVALID_ARGUMENT.
    templates = jobs_grpc.TemplateServiceStub(channel)
    for data_type in ("x" * 100_000, "é" * 50_000):
        fields = [pb.JobField(name="total", data_type=data_type)]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await templates.CreateTemplate(
                jobs_pb.CreateTemplateRequest(
                    template=pb.Template(display_name="t", fields=fields)
                ),
                metadata=USER,
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        details = err.value.details() or ""
        assert "data_type" in details
        assert len(details.encode()) <= 1000


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_list_longer_than_any_method_takes_is_invalid_argument(
    channel: grpc.aio.Channel,
) -> None:
    # Methods checked their own limits after converting every entry (seconds for the
    # 900,000 a message can hold); ListAllJobs had none and took 100,000 statuses.
    admin = admin_grpc.AdminServiceStub(channel)
    await _invalid(
        admin.ListAllJobs(
            admin_pb.ListAllJobsRequest(statuses=[pb.Job.READY] * 10_001), metadata=USER
        ),
        mentions="statuses holds 10001 entries",
    )


async def test_a_workers_report_quoting_a_nul_is_stored_without_it(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    # Workers report text from documents anyone uploads (errors, evidence). A NUL in it
    # failed the report on PostgreSQL, INTERNAL on every redelivery, until the task was
    # dead-lettered and its result lost.
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELDS, 2)
    values = struct_pb2.Struct()
    values.update({"total": "1.00"})
    stored = await worker_stub.ReportTaskResult(
        worker_pb.ReportTaskResultRequest(task=tasks[0], values=values, extractor="off\x00line"),
        metadata=WORKER,
    )
    assert stored.applied
    failed = await worker_stub.ReportTaskFailure(
        worker_pb.ReportTaskFailureRequest(
            task=tasks[1],
            failure_class=worker_pb.ReportTaskFailureRequest.PERMANENT,
            error="cannot read 'a\x00b'",
        ),
        metadata=WORKER,
    )
    assert failed.applied
    listed = await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)
    errors = {t.name: t.last_error for t in listed.tasks}
    assert errors[tasks[1]] == "cannot read 'ab'"
    [result] = (
        await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    ).results
    assert result.extractor == "offline"
