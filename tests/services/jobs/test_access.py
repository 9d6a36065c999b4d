"""Who may call what, enforced once per call by the server interceptor (api.caller)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest

from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from tests.conftest import USER
from tests.identity import IdentityProvider
from tests.services.jobs.helpers import WORKER

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

WORKER_METHODS = worker_pb.DESCRIPTOR.services_by_name["JobWorkerService"].methods
# Workers call this one with the user's forwarded credential; it shows that user's files only.
USER_FORWARDED = {"GetFileForWorker"}


def _call(stub: Any, method: str, request_type: str, metadata: Any) -> Any:
    return getattr(stub, method)(getattr(worker_pb, request_type)(), metadata=metadata)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_every_worker_method_refuses_a_user_credential(
    worker_stub: WorkerStub, idp: IdentityProvider
) -> None:
    refused = []
    for method in WORKER_METHODS:
        if method.name in USER_FORWARDED:
            continue
        for metadata in (USER, idp.metadata("alice")):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _call(worker_stub, method.name, method.input_type.name, metadata)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, method.name
            assert "only ByteReview workers" in (err.value.details() or ""), method.name
        refused.append(method.name)
    assert refused == [
        "ReportFileAnalysis",
        "ReportArchiveEntries",
        "BeginTask",
        "ReportTaskResult",
        "ReportTaskFailure",
        "BeginTasks",
        "ReportTaskResults",
        "ReportTaskFailures",
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_forwarded_user_credential_reaches_get_file_for_worker(
    worker_stub: WorkerStub,
) -> None:
    # Past the interceptor: the request itself is what is wrong (no file named).
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await worker_stub.GetFileForWorker(worker_pb.GetFileForWorkerRequest(), metadata=USER)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_public_services_refuse_a_worker_credential(job_stub: JobStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.ListJobs(jobs_pb.ListJobsRequest(), metadata=WORKER)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "needs a user credential" in (err.value.details() or "")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_ambiguous_credential_is_unauthenticated(
    job_stub: JobStub, idp: IdentityProvider
) -> None:
    # Which of two credentials counted was an accident of order (the last one here, the
    # first at the gateway): a valid token beside a bogus one signed the caller in.
    valid = f"Bearer {idp.token('someone')}"
    for metadata in (
        (("authorization", "Bearer forged"), ("authorization", valid)),
        (("authorization", valid), ("x-api-key", "brk_forged")),
        (("x-api-key", "brk_forged"), ("x-api-key", "brk_other")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await job_stub.ListJobs(jobs_pb.ListJobsRequest(), metadata=metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
    assert await job_stub.ListJobs(jobs_pb.ListJobsRequest(), metadata=(("authorization", valid),))


async def test_any_profile_a_token_carries_signs_in(
    channel: grpc.aio.Channel, idp: IdentityProvider
) -> None:
    # A name, email or subject longer than its column, or holding NUL, made every call of
    # that user INTERNAL on PostgreSQL. The profile is cut and cleaned; a subject, the
    # user's key, cannot be cut without naming someone else: it is refused.
    users = jobs_grpc.UserServiceStub(channel)
    long_email = "e" * 400 + "@example.test"
    claims: tuple[tuple[str, dict[str, Any]], ...] = (
        ("long-name", {"name": "n" * 300}),
        ("long-email", {"email": long_email}),
        ("nul-name", {"name": "a\x00b"}),
    )
    for subject, profile in claims:
        token = (("authorization", f"Bearer {idp.token(subject, **profile)}"),)
        synced = await users.SyncCurrentUser(jobs_pb.SyncCurrentUserRequest(), metadata=token)
        listed = await jobs_grpc.JobServiceStub(channel).ListJobs(
            jobs_pb.ListJobsRequest(), metadata=token
        )
        assert not listed.jobs
        if subject == "long-name":
            assert synced.display_name == "n" * 200
        elif subject == "long-email":
            assert synced.email == long_email[:320]
        else:
            assert synced.display_name == "ab"
    for subject in ("s" * 600, "a\x00b"):
        token = (("authorization", f"Bearer {idp.token(subject)}"),)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await users.SyncCurrentUser(jobs_pb.SyncCurrentUserRequest(), metadata=token)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, err.value.details()
        assert "subject" in (err.value.details() or "")
