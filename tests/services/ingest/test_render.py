"""IngestService.RenderPage through the real ingest process (workers analyse the files first)
and the real jobs service, which checks the caller owns the file."""

from __future__ import annotations

import asyncio
import io
import time
from typing import cast

import grpc
import pytest
from PIL import Image

from bytereview.core import Settings
from bytereview.core.pixel_budget import DECODED
from bytereview.ingest.v1 import ingest_service_pb2 as ingest_pb
from bytereview.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from tests import archives
from tests.identity import IdentityProvider
from tests.pdfs import text_pdf
from tests.services.ingest.test_inspect import ingest
from tests.services.jobs.helpers import create_uploaded

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
__all__ = ["ingest"]


def image_bytes(size: tuple[int, int], fmt: str, frames: int = 1) -> bytes:
    out = io.BytesIO()
    pages = [Image.new("RGB", size, (40 * i, 90, 160)) for i in range(frames)]
    pages[0].save(out, format=fmt, save_all=frames > 1, append_images=pages[1:])
    return out.getvalue()


async def analysed(
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    metadata: tuple[tuple[str, str], ...],
    files: dict[str, bytes],
) -> dict[str, str]:
    """path -> file name, once the ingest workers have analysed every file."""
    created = await create_uploaded(job_stub, settings, metadata, files)
    job = created.job.name
    await job_stub.FinalizeUploads(jobs_pb.FinalizeUploadsRequest(name=job), metadata=metadata)
    deadline = time.monotonic() + 60
    while (
        await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=metadata)
    ).status == pb.Job.ANALYZING:
        assert time.monotonic() < deadline, "analysis did not finish"
        await asyncio.sleep(0.2)
    return {t.path: t.file for t in created.upload_targets}


async def render(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    metadata: tuple[tuple[str, str], ...],
    **fields: object,
) -> tuple[dict[str, str], bytes]:
    call = ingest.RenderPage(
        ingest_pb.RenderPageRequest(**fields),  # type: ignore[arg-type]
        metadata=metadata,
    )
    headers = {str(k): str(v) for k, v in (await call.initial_metadata() or ())}
    data = b"".join([bytes(chunk.data) async for chunk in call])
    return headers, data


async def refused(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    metadata: tuple[tuple[str, str], ...],
    **fields: object,
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await render(ingest, metadata, **fields)
    return caught.value


async def test_pdf_pages_and_images_become_pngs_of_known_size(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    idp: IdentityProvider,
) -> None:
    alice = idp.metadata("alice")
    files = await analysed(
        job_stub,
        settings,
        alice,
        {
            "doc.pdf": text_pdf(["Invoice Number: A-1", "Total: 10.00"], pages=2),
            "photo.jpg": image_bytes((2000, 1000), "JPEG"),
            "scan.tiff": image_bytes((300, 400), "TIFF", frames=2),
            "small.png": image_bytes((150, 100), "PNG"),
        },
    )
    headers, data = await render(ingest, alice, file=files["doc.pdf"], page=2, width=600)
    page = Image.open(io.BytesIO(data))
    assert page.format == "PNG"
    assert (headers["x-http-x-image-width"], headers["x-http-x-image-height"]) == (
        str(page.width),
        str(page.height),
    )
    assert page.width == 600
    assert headers["x-http-x-page-count"] == "2"
    # The text is drawn: the page is not blank.
    darkest, _ = cast("tuple[int, int]", page.convert("L").getextrema())
    assert darkest < 128

    headers, data = await render(ingest, alice, file=files["photo.jpg"], width=500)
    assert Image.open(io.BytesIO(data)).size == (500, 250)
    assert headers["x-http-x-page-count"] == "1"

    # A TIFF (which browsers cannot show) with two pages: the second, as a PNG.
    headers, data = await render(ingest, alice, file=files["scan.tiff"], page=2)
    shown = Image.open(io.BytesIO(data))
    assert (shown.format, shown.size) == ("PNG", (300, 400))
    assert headers["x-http-x-page-count"] == "2"
    # A small image is not enlarged.
    _, data = await render(ingest, alice, file=files["small.png"], width=1200)
    assert Image.open(io.BytesIO(data)).size == (150, 100)


async def test_bad_requests_and_other_users(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    idp: IdentityProvider,
) -> None:
    alice = idp.metadata("alice")
    files = await analysed(
        job_stub,
        settings,
        alice,
        {
            "doc.pdf": text_pdf(["x"]),
            "batch.zip": archives.zip_bytes({"in/a.pdf": text_pdf(["a"])}),
            "notes.txt": b"plain words",
        },
    )
    pdf = files["doc.pdf"]
    # Another user's file is not found, and nothing of it is drawn.
    err = await refused(ingest, idp.metadata("bob"), file=pdf)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await refused(ingest, (), file=pdf)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    for fields in ({"page": -1}, {"width": 50}, {"width": 5000}):
        err = await refused(ingest, alice, file=pdf, **fields)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
    # A page the document does not have is not there, as another user's file is not.
    err = await refused(ingest, alice, file=pdf, page=2)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "the document has 1 page(s)" in (err.details() or "")
    for name in ("batch.zip", "notes.txt"):
        err = await refused(ingest, alice, file=files[name])
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, name
        assert "no page to show" in (err.details() or "")


async def test_images_are_drawn_once_their_pixels_are_free(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    idp: IdentityProvider,
) -> None:
    """Pages asked at once are drawn within the process's budget of decoded pixels
    (core/pixel_budget.py): a PNG is decoded whole even for a thumbnail, and a few 50 Mpx
    ones drawn at once took more than a pod has. Past the budget a drawing waits."""
    alice = idp.metadata("alice")
    files = await analysed(job_stub, settings, alice, {"big.png": image_bytes((900, 600), "PNG")})
    with DECODED.held(DECODED.total):  # every pixel taken, as by other drawings
        drawing = asyncio.create_task(render(ingest, alice, file=files["big.png"], width=300))
        deadline = time.monotonic() + 30
        while DECODED.waiting != 1:
            assert time.monotonic() < deadline, "the drawing never waited for pixels"
            await asyncio.sleep(0.01)
        assert not drawing.done()
    _, data = await asyncio.wait_for(drawing, timeout=30)
    assert Image.open(io.BytesIO(data)).size == (300, 200)
