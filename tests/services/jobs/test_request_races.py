"""The same request sent several times at once (a double click, a retrying client).

A delete: one succeeds, the others are NOT_FOUND (unlocked, each read the row and all but
one DELETE matched nothing: INTERNAL on PostgreSQL). A create under a limit: the limit
holds (unlocked, each counted the rows before any was written)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from bytereview.core.limits import MAX_KEYS_PER_USER
from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from tests.conftest import USER
from tests.services.jobs.helpers import completed_job

if TYPE_CHECKING:
    from bytereview.jobs.v1.jobs_service_pb2_grpc import TemplateServiceAsyncStub
    from tests.services.jobs.helpers import JobStub, WorkerStub

AT_ONCE = 8
FIELDS = [pb.JobField(name="total", data_type="currency")]


async def _all_at_once(delete: Callable[[], Awaitable[Any]]) -> list[str]:
    got = await asyncio.gather(*(delete() for _ in range(AT_ONCE)), return_exceptions=True)
    codes: list[str] = []
    for outcome in got:
        if isinstance(outcome, grpc.aio.AioRpcError):
            codes.append(outcome.code().name)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            codes.append("OK")
    return sorted(codes)


async def _template(templates: TemplateServiceAsyncStub, name: str) -> pb.Template:
    made: pb.Template = await templates.CreateTemplate(
        jobs_pb.CreateTemplateRequest(template=pb.Template(display_name=name, fields=FIELDS)),
        metadata=USER,
    )
    return made


async def test_a_template_deleted_several_times_at_once(channel: grpc.aio.Channel) -> None:
    templates = jobs_grpc.TemplateServiceStub(channel)
    template = await _template(templates, "t")
    codes = await _all_at_once(
        lambda: templates.DeleteTemplate(
            jobs_pb.DeleteTemplateRequest(name=template.name), metadata=USER
        )
    )
    assert codes == ["NOT_FOUND"] * (AT_ONCE - 1) + ["OK"]


async def test_an_api_key_deleted_several_times_at_once(channel: grpc.aio.Channel) -> None:
    users = jobs_grpc.UserServiceStub(channel)
    key = await users.CreateApiKey(
        jobs_pb.CreateApiKeyRequest(parent="users/me", api_key=pb.ApiKey(display_name="k")),
        metadata=USER,
    )
    codes = await _all_at_once(
        lambda: users.DeleteApiKey(jobs_pb.DeleteApiKeyRequest(name=key.name), metadata=USER)
    )
    assert codes == ["NOT_FOUND"] * (AT_ONCE - 1) + ["OK"]


async def test_a_golden_document_deleted_several_times_at_once(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, channel: grpc.aio.Channel
) -> None:
    templates = jobs_grpc.TemplateServiceStub(channel)
    template = await _template(templates, "g")
    job = await completed_job(job_stub, worker_stub, settings, files=1)
    [result] = (
        await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    ).results
    golden = await templates.CreateGoldenDocument(
        jobs_pb.CreateGoldenDocumentRequest(
            parent=template.name, golden_document=pb.GoldenDocument(result=result.name)
        ),
        metadata=USER,
    )
    codes = await _all_at_once(
        lambda: templates.DeleteGoldenDocument(
            jobs_pb.DeleteGoldenDocumentRequest(name=golden.name), metadata=USER
        )
    )
    assert codes == ["NOT_FOUND"] * (AT_ONCE - 1) + ["OK"]


async def test_api_keys_created_at_once_stay_within_the_limit(channel: grpc.aio.Channel) -> None:
    users = jobs_grpc.UserServiceStub(channel)
    created = await asyncio.gather(
        *(
            users.CreateApiKey(
                jobs_pb.CreateApiKeyRequest(
                    parent="users/me", api_key=pb.ApiKey(display_name=f"k{i}")
                ),
                metadata=USER,
            )
            for i in range(MAX_KEYS_PER_USER + 10)
        ),
        return_exceptions=True,
    )
    refused = [c for c in created if isinstance(c, grpc.aio.AioRpcError)]
    # A spent quota, not a malformed request (schemathesis: a well-formed CreateApiKey was 400).
    assert {c.code() for c in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert len(refused) == 10
    listed = await users.ListApiKeys(jobs_pb.ListApiKeysRequest(parent="users/me"), metadata=USER)
    assert len(listed.api_keys) == MAX_KEYS_PER_USER
