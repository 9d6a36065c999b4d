"""IngestService.InspectArchive through the real ingest process's gRPC server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from bytereview.core.settings import Settings
from bytereview.ingest.v1 import ingest_service_pb2 as ingest_pb
from bytereview.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from bytereview.up import free_port
from services.ingest.worker import serve
from services.jobs.server import RunningJobsService
from tests import archives
from tests.identity import IdentityProvider
from tests.pdfs import text_pdf
from tests.services.jobs.test_workflow import create_uploaded

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def ingest(
    settings: Settings, jobs: RunningJobsService
) -> AsyncIterator[ingest_grpc.IngestServiceStub]:
    cfg = settings.model_copy(
        update={"jobs_addr": f"127.0.0.1:{jobs.port}", "ingest_addr": f"127.0.0.1:{free_port()}"}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(cfg, stop))
    async with grpc.aio.insecure_channel(cfg.ingest_addr) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=30)
        yield ingest_grpc.IngestServiceStub(channel)
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def uploaded(job_stub, settings: Settings, metadata, files: dict[str, bytes]) -> list[str]:  # type: ignore[no-untyped-def]
    created = await create_uploaded(job_stub, settings, metadata, files)
    return [t.file for t in created.upload_targets]


async def test_listing_problems_and_pages(
    ingest, job_stub, settings, idp: IdentityProvider
) -> None:  # type: ignore[no-untyped-def]
    alice = idp.metadata("alice")
    entries = {
        "march/a.pdf": text_pdf(["A"]),
        "march/b.pdf": text_pdf(["B"]),
        "__MACOSX/._a.pdf": b"junk",
        "notes.txt": b"hello",
    }
    [archive] = await uploaded(
        job_stub, settings, alice, {"batch.zip": archives.zip_bytes(entries)}
    )
    first = await ingest.InspectArchive(
        ingest_pb.InspectArchiveRequest(file=archive, page_size=3), metadata=alice
    )
    assert first.entry_count == 4
    assert first.problem == ""
    assert first.next_page_token
    rest = await ingest.InspectArchive(
        ingest_pb.InspectArchiveRequest(
            file=archive, page_size=3, page_token=first.next_page_token
        ),
        metadata=alice,
    )
    listing = [*first.entries, *rest.entries]
    assert [e.path for e in listing] == list(entries)
    assert not rest.next_page_token
    junk = next(e for e in listing if e.path.startswith("__MACOSX"))
    assert "skipped" in junk.problem
    assert sum(e.uncompressed_size for e in listing) == first.total_uncompressed_size

    # Another user cannot look inside it.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ingest.InspectArchive(
            ingest_pb.InspectArchiveRequest(file=archive), metadata=idp.metadata("bob")
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_hostile_and_bad_requests(ingest, job_stub, settings, idp: IdentityProvider) -> None:  # type: ignore[no-untyped-def]
    alice = idp.metadata("alice")
    files = await uploaded(
        job_stub,
        settings,
        alice,
        {
            "enc.zip": archives.encrypted_zip(),
            "overlap.zip": archives.overlapping_zip(),
            "plain.pdf": text_pdf(["x"]),
        },
    )
    enc, overlap, pdf = files
    listed = await ingest.InspectArchive(ingest_pb.InspectArchiveRequest(file=enc), metadata=alice)
    assert any(e.encrypted and "encrypted" in e.problem for e in listed.entries)
    bomb = await ingest.InspectArchive(
        ingest_pb.InspectArchiveRequest(file=overlap), metadata=alice
    )
    assert "overlap" in bomb.problem
    for request, code in (
        (ingest_pb.InspectArchiveRequest(file=pdf), grpc.StatusCode.FAILED_PRECONDITION),
        (ingest_pb.InspectArchiveRequest(file=enc, page_size=-1), grpc.StatusCode.INVALID_ARGUMENT),
        (
            ingest_pb.InspectArchiveRequest(file=enc, page_token="x"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (ingest_pb.InspectArchiveRequest(file="not/a/file"), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await ingest.InspectArchive(request, metadata=alice)
        assert caught.value.code() == code, request
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ingest.InspectArchive(ingest_pb.InspectArchiveRequest(file=enc))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
