"""An open WatchJob ends when the credential that opened it no longer holds (a revoked API
key, an expired token): the real jobs service."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest

from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs.domain.jobs.watch import WATCH_POLL_SECONDS
from tests.identity import IdentityProvider
from tests.services.jobs.helpers import PDF, create_uploaded

if TYPE_CHECKING:
    from bytereview.core.settings import Settings
    from tests.services.jobs.helpers import JobStub


async def test_a_revoked_api_key_stops_an_open_watch(
    job_stub: JobStub, channel: grpc.aio.Channel, settings: Settings, idp: IdentityProvider
) -> None:
    """A revoked key is refused on every new call at once (users.principal_for_api_key);
    a WatchJob stream it opened before must not go on delivering the job's events."""
    alice = idp.metadata("alice")
    users = jobs_grpc.UserServiceStub(channel)
    made = await users.CreateApiKey(
        jobs_pb.CreateApiKeyRequest(parent="users/me", api_key=pb.ApiKey(display_name="ci")),
        metadata=alice,
    )
    key = (("x-api-key", made.key),)
    created = await create_uploaded(job_stub, settings, key, {"a.pdf": PDF})
    job = created.job.name

    stream = job_stub.WatchJob(jobs_pb.WatchJobRequest(name=job), metadata=key)
    first = await asyncio.wait_for(stream.read(), timeout=10)
    assert isinstance(first, pb.JobEvent)
    assert first.kind == "job.snapshot"

    # The key is revoked (leaked, say): new calls with it fail at once ...
    await users.DeleteApiKey(jobs_pb.DeleteApiKeyRequest(name=made.name), metadata=alice)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=key)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # ... the job's owner goes on working, and the open stream must not show it: it ends.
    # (The watch checks its credential once a poll interval: a revocation holds within one.)
    await asyncio.sleep(WATCH_POLL_SECONDS)
    await job_stub.FinalizeUploads(jobs_pb.FinalizeUploadsRequest(name=job), metadata=alice)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            # Before the fix: the ANALYZING event of the owner's finalize arrived here.
            await asyncio.wait_for(stream.read(), timeout=10)
        assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        stream.cancel()


async def test_a_watch_ends_when_its_token_expires(
    job_stub: JobStub, settings: Settings, idp: IdentityProvider
) -> None:
    """A bearer JWT past its `exp` fails every new call; a quiet watch it opened ends too."""
    short = (("authorization", f"Bearer {idp.token('carol', expires_in=2)}"),)
    created = await create_uploaded(job_stub, settings, short, {"a.pdf": PDF})
    stream = job_stub.WatchJob(jobs_pb.WatchJobRequest(name=created.job.name), metadata=short)
    try:
        first = await asyncio.wait_for(stream.read(), timeout=10)
        assert isinstance(first, pb.JobEvent)
        assert first.kind == "job.snapshot"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await asyncio.wait_for(stream.read(), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        stream.cancel()
