"""IngestService.InspectArchive through the real ingest process's gRPC server."""

from __future__ import annotations

import asyncio
import io
import struct
import zipfile
from collections.abc import AsyncIterator

import grpc
import pytest

from bytereview.core import Settings
from bytereview.core.clients import Metadata
from bytereview.core.storage import make_storage
from bytereview.ingest.v1 import ingest_service_pb2 as ingest_pb
from bytereview.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from services.ingest import serve
from services.ingest.server import LISTINGS_PER_USER
from services.jobs import RunningJobsService
from tests import archives
from tests import hostile_archives as hostile
from tests.identity import IdentityProvider
from tests.pdfs import text_pdf
from tests.services.jobs.helpers import create_uploaded

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def ingest(
    settings: Settings, jobs: RunningJobsService
) -> AsyncIterator[ingest_grpc.IngestServiceStub]:
    # Port 0: the server binds a free port itself and reports it.
    cfg = settings.model_copy(
        update={"jobs_addr": f"127.0.0.1:{jobs.port}", "ingest_addr": "127.0.0.1:0"}
    )
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(cfg, stop, listening=port.set_result))
    address = f"127.0.0.1:{await asyncio.wait_for(port, timeout=30)}"
    async with grpc.aio.insecure_channel(address) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=30)
        yield ingest_grpc.IngestServiceStub(channel)
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def uploaded(
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    metadata: tuple[tuple[str, str], ...],
    files: dict[str, bytes],
) -> list[str]:
    created: jobs_pb.CreateJobResponse = await create_uploaded(job_stub, settings, metadata, files)
    return [t.file for t in created.upload_targets]


async def test_listing_problems_and_pages(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    idp: IdentityProvider,
) -> None:
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


async def test_hostile_and_bad_requests(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    idp: IdentityProvider,
) -> None:
    alice = idp.metadata("alice")
    files = await uploaded(
        job_stub,
        settings,
        alice,
        {
            "enc.zip": archives.encrypted_zip(),
            "overlap.zip": archives.overlapping_zip(),
            "plain.pdf": text_pdf(["x"]),
            # Not analysed yet: known by its directory all the same, not listed as an archive.
            "report.docx": hostile.office_exported("word/document.xml"),
        },
    )
    enc, overlap, pdf, docx = files
    listed = await ingest.InspectArchive(ingest_pb.InspectArchiveRequest(file=enc), metadata=alice)
    assert any(e.encrypted and "encrypted" in e.problem for e in listed.entries)
    bomb = await ingest.InspectArchive(
        ingest_pb.InspectArchiveRequest(file=overlap), metadata=alice
    )
    assert "overlap" in bomb.problem
    for request, code in (
        (ingest_pb.InspectArchiveRequest(file=pdf), grpc.StatusCode.FAILED_PRECONDITION),
        (ingest_pb.InspectArchiveRequest(file=docx), grpc.StatusCode.FAILED_PRECONDITION),
        (ingest_pb.InspectArchiveRequest(file=enc, page_size=-1), grpc.StatusCode.INVALID_ARGUMENT),
        (
            ingest_pb.InspectArchiveRequest(file=enc, page_token="x"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            ingest_pb.InspectArchiveRequest(file=enc, page_token="²"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            ingest_pb.InspectArchiveRequest(file=enc, page_token="9" * 5000),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (ingest_pb.InspectArchiveRequest(file="not/a/file"), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await ingest.InspectArchive(request, metadata=alice)
        assert caught.value.code() == code, request
    for token in ("", "9" * 5000):  # the credential is checked before the token is parsed
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await ingest.InspectArchive(ingest_pb.InspectArchiveRequest(file=enc, page_token=token))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_over_the_limit_is_answered_from_the_directory_end(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    idp: IdentityProvider,
) -> None:
    alice = idp.metadata("alice")
    data = hostile.understated_count(30)
    # The end record claims 65,535 entries; the records after the first are never read.
    end = data.rfind(b"PK\x05\x06")
    data = data[: end + 8] + struct.pack("<HH", 0xFFFF, 0xFFFF) + data[end + 12 :]
    [archive] = await uploaded(job_stub, settings, alice, {"huge.zip": data})
    got = await ingest.InspectArchive(ingest_pb.InspectArchiveRequest(file=archive), metadata=alice)
    assert "limit is 10000 files" in got.problem
    assert got.entry_count == 0xFFFF
    assert not got.entries


async def test_a_refused_archive_is_answered_from_its_verdict(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    idp: IdentityProvider,
) -> None:
    alice = idp.metadata("alice")
    [archive] = await uploaded(job_stub, settings, alice, {"bomb.zip": hostile.overlapping()})
    job = archive.rsplit("/files/", 1)[0]
    await job_stub.FinalizeUploads(jobs_pb.FinalizeUploadsRequest(name=job), metadata=alice)
    for _ in range(150):  # the fixture's worker refuses it
        listed = await job_stub.ListFiles(jobs_pb.ListFilesRequest(parent=job), metadata=alice)
        if listed.files[0].status == pb.SourceFile.FAILED:
            break
        await asyncio.sleep(0.1)
    assert "overlap" in listed.files[0].error
    # Its bytes are not read again: even replaced by garbage, the verdict is the answer.
    storage = make_storage(settings)
    [key] = [k for k in storage.list_keys(f"{job}/") if "/entries/" not in k]
    with storage.open_write(key) as handle:
        handle.write(b"PK\x03\x04 garbage")
    got = await ingest.InspectArchive(ingest_pb.InspectArchiveRequest(file=archive), metadata=alice)
    assert "overlap" in got.problem
    assert not got.problem.startswith("the archive was refused")
    assert not got.entries


def _long_listing(seed: int) -> bytes:
    """An archive whose listing takes a noticeable while to build: many long names."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for i in range(3000):
            archive.writestr(f"{seed}/{i}/" + "\U0001f600" * 200 + ".png", b"")
    return out.getvalue()


async def test_one_users_burst_of_listings_does_not_hold_up_anothers(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    idp: IdentityProvider,
) -> None:
    # Eleven listings asked for at once by one user held another user's one-entry listing up
    # for 1.66 s, seven times one listing's 0.23 s (LISTINGS_AT_ONCE builders, first come
    # first served); now a user has LISTINGS_PER_USER being built and the rest are refused.
    alice, bob = idp.metadata("alice"), idp.metadata("bob")
    burst = await uploaded(
        job_stub, settings, alice, {f"{n}.zip": _long_listing(n) for n in range(12)}
    )
    [small] = await uploaded(
        job_stub, settings, bob, {"b.zip": archives.zip_bytes({"a.png": archives.PNG})}
    )

    async def listing(file: str, who: Metadata = alice) -> ingest_pb.InspectArchiveResponse:
        return await ingest.InspectArchive(ingest_pb.InspectArchiveRequest(file=file), metadata=who)

    await listing(burst[0])  # built, then cached
    calls = [asyncio.create_task(listing(f)) for f in burst[1:]]
    await asyncio.sleep(0.05)
    await listing(small, bob)
    # Counted, not timed (a loaded machine slows both users alike): first come, first served,
    # Bob's listing came back after about ten of Alice's were built; now it waits for none
    # of hers but the one being built (and maybe one let in after it).
    built_before = sum(1 for c in calls if c.done() and c.exception() is None)
    answers = await asyncio.gather(*calls, return_exceptions=True)
    assert built_before <= LISTINGS_PER_USER + 1, built_before
    listed = [a for a in answers if isinstance(a, ingest_pb.InspectArchiveResponse)]
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    # Those whose turn came after an earlier one was built are listed too; most are not.
    assert LISTINGS_PER_USER <= len(listed) < len(calls) // 2, answers
    assert len(listed) + len(refused) == len(calls), answers
    assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert "being built at once per user" in (refused[0].details() or "")
    # The slot is given back: the same user lists another archive.
    assert len((await listing(burst[-1])).entries) == 100
