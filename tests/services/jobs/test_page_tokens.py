"""Keyset page tokens (#18): pages over equal sort keys and concurrent inserts, tokens bound
to their query, tampered or foreign tokens refused with INVALID_ARGUMENT (a 400)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import grpc
import pytest

from bytereview.core.errors import InvalidArgument
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs import RunningJobsService
from services.jobs.domain.pages import keyset
from services.jobs.domain.pages.tokens import MAX_PAGE_TOKEN_CHARS, PageTokens
from services.jobs.store import models
from tests.conftest import USER
from tests.services.jobs.helpers import PDF, create_uploaded

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub

WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def test_a_token_round_trips_and_says_nothing_in_clear() -> None:
    codec = PageTokens("secret-one")
    key = ("invoices/ä.pdf", 7, WHEN, "f" * 32)
    token = codec.encode("files:job", key)
    assert codec.decode(token, "files:job") == key
    assert token.isascii()
    assert "invoices" not in token
    assert codec.decode("", "files:job") is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # last character edited
        lambda t: t[:5] + ("A" if t[5] != "A" else "B") + t[6:],  # the MAC edited
        lambda t: t[:-4],  # cut short
        lambda t: "x" + t,
        lambda t: "²",
        lambda t: "9" * (MAX_PAGE_TOKEN_CHARS + 1),
        lambda t: "",  # not an error: the first page
    ],
)
def test_an_edited_token_is_refused(mangle: object) -> None:
    codec = PageTokens("secret-one")
    token = codec.encode("files:job", ("a.pdf", "0" * 32))
    bad = mangle(token)  # type: ignore[operator]
    if bad == "":
        assert codec.decode(bad, "files:job") is None
        return
    with pytest.raises(InvalidArgument, match="page_token"):
        codec.decode(bad, "files:job")


def test_a_token_is_bound_to_its_query_and_its_install() -> None:
    token = PageTokens("secret-one").encode("files:job-a", ("a.pdf", "0" * 32))
    with pytest.raises(InvalidArgument, match="same query"):
        PageTokens("secret-one").decode(token, "files:job-b")
    with pytest.raises(InvalidArgument, match="same query"):
        PageTokens("secret-two").decode(token, "files:job-a")


def test_the_longest_key_fits_the_length_bound() -> None:
    codec = PageTokens("s")
    token = codec.encode("files:j", ("\U0001f600" * 2048, "0" * 32))
    assert len(token) <= MAX_PAGE_TOKEN_CHARS
    assert codec.decode(token, "files:j") == ("\U0001f600" * 2048, "0" * 32)


async def _job_with_files(
    job_stub: JobStub, jobs: RunningJobsService, paths: list[str]
) -> tuple[str, str]:
    """A job (its name and id) plus files inserted as rows with the given (repeated) paths."""
    created = await create_uploaded(job_stub, jobs.ctx.settings, USER, {"a-first.pdf": PDF})
    job_id = created.job.name.split("/")[1]
    await _add_files(jobs, job_id, paths)
    return created.job.name, job_id


async def _add_files(jobs: RunningJobsService, job_id: str, paths: list[str]) -> list[str]:
    """The ids of new file rows with the given paths."""
    ids = []
    async with jobs.ctx.transaction() as session:
        for path in paths:
            file_id = models.new_id()
            session.add(
                models.SourceFile(
                    id=file_id,
                    job_id=job_id,
                    original_path=path,
                    storage_key=f"jobs/{job_id}/uploads/{file_id}",
                    status="READY",
                )
            )
            ids.append(file_id)
    return ids


async def _all_files(job_stub: JobStub, job: str, size: int) -> list[tuple[str, str]]:
    out, token = [], ""
    while True:
        page = await job_stub.ListFiles(
            jobs_pb.ListFilesRequest(parent=job, page_size=size, page_token=token), metadata=USER
        )
        out += [(f.original_path, f.name) for f in page.files]
        token = page.next_page_token
        if not token:
            return out


async def test_pages_over_equal_sort_keys_serve_each_row_once(
    job_stub: JobStub, jobs: RunningJobsService
) -> None:
    # 23 files sharing three paths: only the id tells them apart, and pages cut through ties.
    job, _ = await _job_with_files(job_stub, jobs, [f"same/{i % 3}.pdf" for i in range(23)])
    listed = await _all_files(job_stub, job, 4)
    assert len(listed) == 24
    assert len({name for _, name in listed}) == 24
    assert listed == sorted(listed, key=lambda f: (f[0], f[1].rsplit("/", 1)[1]))


async def test_rows_inserted_between_pages_shift_nothing(
    job_stub: JobStub, jobs: RunningJobsService
) -> None:
    job, job_id = await _job_with_files(job_stub, jobs, [f"m/{i:02}.pdf" for i in range(10)])
    first = await job_stub.ListFiles(
        jobs_pb.ListFilesRequest(parent=job, page_size=5), metadata=USER
    )
    seen = [f.original_path for f in first.files]
    assert seen == ["a-first.pdf", "m/00.pdf", "m/01.pdf", "m/02.pdf", "m/03.pdf"]
    # Rows land before the cursor (never served: an OFFSET would serve m/03 again) and after.
    added = await _add_files(
        jobs, job_id, ["a-before.pdf", "a-before2.pdf", "m/03.pdf", "z-after.pdf"]
    )
    token, rest = first.next_page_token, []
    while token:
        page = await job_stub.ListFiles(
            jobs_pb.ListFilesRequest(parent=job, page_size=5, page_token=token), metadata=USER
        )
        rest += [f.name.rsplit("/", 1)[1] for f in page.files]
        token = page.next_page_token
    by_id = {f.name.rsplit("/", 1)[1]: f.original_path for f in first.files}
    async with jobs.ctx.reading() as session:
        for file_id in rest:
            row = await session.get(models.SourceFile, file_id)
            assert row is not None
            by_id[file_id] = row.original_path
    paths = [by_id[i] for i in rest]
    originals = [f"m/{i:02}.pdf" for i in range(4, 10)]
    assert [p for p in paths if p in originals] == originals
    assert "a-before.pdf" not in paths
    assert "a-before2.pdf" not in paths
    assert paths[-1] == "z-after.pdf"
    # The second m/03.pdf ties with the served one on its path: its id alone decides.
    served_m03 = next(
        f.name.rsplit("/", 1)[1] for f in first.files if f.original_path == "m/03.pdf"
    )
    assert (added[2] in rest) == (added[2] > served_m03)
    assert served_m03 not in rest


async def test_jobs_created_at_the_same_instant_page_in_order(
    job_stub: JobStub, jobs: RunningJobsService
) -> None:
    created = [
        await create_uploaded(job_stub, jobs.ctx.settings, USER, {"x.pdf": PDF}) for _ in range(7)
    ]
    ids = [c.job.name.split("/")[1] for c in created]
    async with jobs.ctx.transaction() as session:
        for job_id in ids:
            row = await session.get(models.Job, job_id)
            assert row is not None
            row.created_at = WHEN
    names, token = [], ""
    while True:
        page = await job_stub.ListJobs(
            jobs_pb.ListJobsRequest(page_size=3, page_token=token), metadata=USER
        )
        assert page.total_size == 7
        names += [j.name for j in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert names == [f"jobs/{i}" for i in sorted(ids, reverse=True)]


async def test_a_token_of_another_query_is_invalid_argument(
    job_stub: JobStub, jobs: RunningJobsService
) -> None:
    job_a, _ = await _job_with_files(job_stub, jobs, [f"{i}.pdf" for i in range(4)])
    job_b, _ = await _job_with_files(job_stub, jobs, [f"{i}.pdf" for i in range(4)])
    token = (
        await job_stub.ListFiles(jobs_pb.ListFilesRequest(parent=job_a, page_size=2), metadata=USER)
    ).next_page_token
    assert token
    foreign: list[Awaitable[object]] = [
        job_stub.ListFiles(
            jobs_pb.ListFilesRequest(parent=job_b, page_size=2, page_token=token), metadata=USER
        ),
        job_stub.ListResults(
            jobs_pb.ListResultsRequest(parent=job_a, page_size=2, page_token=token), metadata=USER
        ),
        job_stub.ListJobEvents(
            jobs_pb.ListJobEventsRequest(parent=job_a, page_token=token), metadata=USER
        ),
        job_stub.ListJobs(jobs_pb.ListJobsRequest(page_token=token), metadata=USER),
    ]
    for call in foreign:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in (refused.value.details() or "")
    jobs_token = (
        await job_stub.ListJobs(jobs_pb.ListJobsRequest(page_size=1), metadata=USER)
    ).next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # same list, another filter
        await job_stub.ListJobs(
            jobs_pb.ListJobsRequest(
                page_size=1, page_token=jobs_token, status=pb.Job.PENDING_UPLOAD
            ),
            metadata=USER,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no SQL of its own
async def test_a_page_stops_below_grpcs_message_limit_whatever_its_size(
    channel: grpc.aio.Channel,
) -> None:
    """25 templates of 100 fields with 2,000-character instructions weigh ~5 MB, over the
    4 MiB a gRPC client receives by default (this test's channel): at page_size 1000 their
    owner could not list them (RESOURCE_EXHAUSTED). A page now stops at keyset.PAGE_BYTES,
    and the walk lists each template once."""
    fields = [
        pb.JobField(name=f"f{i}", data_type="text", instruction="x" * 2000) for i in range(100)
    ]
    stub = jobs_grpc.TemplateServiceStub(channel)
    created = set()
    for i in range(25):
        template = pb.Template(display_name=f"T{i:03d}", fields=fields)
        got = await stub.CreateTemplate(
            jobs_pb.CreateTemplateRequest(template=template), metadata=USER
        )
        created.add(got.name)
    listed: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await stub.ListTemplates(
            jobs_pb.ListTemplatesRequest(page_size=1000, page_token=token), metadata=USER
        )
        assert page.ByteSize() <= keyset.PAGE_BYTES
        listed += [t.name for t in page.templates]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert sorted(listed) == sorted(created)
    assert pages >= 2
