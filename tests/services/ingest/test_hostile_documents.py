"""Hostile documents through ingest's own paths: analysis of an upload, unpacking of an
entry, and RenderPage's drawing. Each fails its file alone with a reason, within bounded
time and memory."""

from __future__ import annotations

import io
import re
import struct
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from bytereview.core import FailedPrecondition, NotFound, Settings, Storage, Unavailable
from bytereview.core.limits import (
    MAX_IMAGE_PIXELS,
    MAX_TIFF_PAGE_VALUES,
    MAX_WEBP_BYTES,
    MAX_WEBP_CHUNKS,
)
from bytereview.core.pdf_process import PdfBounds
from bytereview.core.storage import make_storage
from services.ingest import analysis, render
from services.ingest.analysis import analyse
from services.ingest.local_copies import LocalCopies
from services.ingest.sniff import sniff
from tests.core.test_pdf_process import reaped_children_cpu
from tests.hostile_documents import (
    bmp_header_claim,
    gif_comment,
    gif_large_frame,
    jpeg_late_frame,
    jpeg_padded,
    jpeg_scan_bomb,
    page_tree_bomb,
    png_chunks,
    png_header_bomb,
    png_late_header,
    tiff_header,
    tiff_pages,
    tiff_strips,
    webp_frames,
    webp_padded,
    webp_vp8x_header,
    xobject_bomb,
)
from tests.pdfs import text_pdf
from tests.servers import FakeGcs
from tests.services.ingest.test_render import image_bytes
from tests.small_disk import small_tmp

SIDE = int(MAX_IMAGE_PIXELS**0.5) + 100


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))


@pytest.fixture
def copies(storage: Storage) -> Iterator[LocalCopies]:
    kept = LocalCopies(storage)
    yield kept
    kept.close()


def stored(storage: Storage, key: str, data: bytes) -> str:
    with storage.open_write(key) as handle:
        handle.write(data)
    return key


@pytest.mark.parametrize(
    ("data", "media"),
    [
        (png_header_bomb(SIDE, SIDE), "image/png"),
        (tiff_header(SIDE, SIDE), "image/tiff"),
        (webp_vp8x_header(SIDE, SIDE), "image/webp"),
    ],
    ids=["png", "tiff", "webp"],
)
def test_an_upload_declaring_more_pixels_than_allowed_fails_at_analysis(
    storage: Storage, data: bytes, media: str
) -> None:
    """It was READY: extraction and RenderPage then decoded gigabytes of pixels."""
    found = analyse(storage, stored(storage, "u", data))
    assert (found.status, found.media_type) == ("FAILED", media)
    assert f"{SIDE} x {SIDE} pixels" in found.error


@pytest.mark.parametrize(
    ("data", "media"),
    [
        (png_late_header(SIDE, SIDE), "image/png"),
        (gif_large_frame(SIDE, SIDE), "image/gif"),
        (jpeg_late_frame(SIDE, SIDE), "image/jpeg"),
        (tiff_header(SIDE, SIDE, padding=100_000), "image/tiff"),
    ],
    ids=[
        "png-ihdr-after-a-chunk",
        "gif-frame-past-its-screen",
        "jpeg-frame-after-128-kib",
        "tiff-directory-after-100-kb",
    ],
)
def test_a_size_declared_past_the_first_header_is_judged_too(
    storage: Storage, copies: LocalCopies, data: bytes, media: str
) -> None:
    """Read from the first bytes these are 1 x 1 (or 0 x 0) and were READY; Pillow opens
    them at SIDE x SIDE, and each reader failed them later with a decoder's message."""
    found = analyse(storage, stored(storage, "u", data))
    assert (found.status, found.media_type) == ("FAILED", media)
    assert f"{SIDE} x {SIDE} pixels" in found.error
    with Image.open(io.BytesIO(data)) as opened:  # what the readers would decode
        assert opened.size == (SIDE, SIDE)
    with pytest.raises(FailedPrecondition, match=f"{SIDE} x {SIDE} pixels"):
        render.draw_image(copies, "u", 1, 200)


@pytest.mark.parametrize("fmt", ["TIFF", "WEBP", "PNG", "JPEG", "GIF", "BMP"])
def test_real_images_keep_their_size_and_stay_ready(storage: Storage, fmt: str) -> None:
    found = analyse(storage, stored(storage, "i", image_bytes((321, 123), fmt)))
    assert (found.status, found.width, found.height) == ("READY", 321, 123), fmt


def test_webp_sizes_are_read_from_each_kind_of_first_chunk() -> None:
    for lossless in (False, True):  # VP8, VP8L
        out = io.BytesIO()
        Image.new("RGB", (300, 200)).save(out, format="WEBP", lossless=lossless)
        found = sniff(out.getvalue())
        assert (found.width, found.height) == (300, 200), lossless
    assert (sniff(webp_vp8x_header(5, 7)).width, sniff(webp_vp8x_header(5, 7)).height) == (5, 7)


def test_a_pdf_page_pdfium_would_expand_for_minutes_is_not_drawn(
    storage: Storage, copies: LocalCopies, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drawn on the ingest process's pdfium thread, this page held its lock (and so every
    analysis of a PDF by that worker) for minutes, and took gigabytes."""
    monkeypatch.setattr(render, "PDF_BOUNDS", PdfBounds(seconds=3))
    key = stored(storage, "bomb", xobject_bomb(12))
    assert analyse(storage, key).status == "READY"  # opening it is cheap: pages load lazily
    before = reaped_children_cpu()
    with pytest.raises(FailedPrecondition, match="cannot be drawn") as first:
        render.draw_pdf_page(copies, key, 1, 800)
    # Whichever bound it reaches first (3 CPU-seconds here, or the child's memory on a fast
    # machine), it is well before the minutes of CPU this page takes.
    assert re.search(r"more than 3 CPU-seconds|more than \d+ bytes", str(first.value))
    assert reaped_children_cpu() - before < 30
    # Asked again, it is refused at once with the same verdict: the child is not held again.
    started = time.monotonic()
    with pytest.raises(FailedPrecondition) as again:
        render.draw_pdf_page(copies, key, 1, 800)
    assert str(again.value) == str(first.value)
    assert time.monotonic() - started < 10
    image, count = render.draw_pdf_page(copies, stored(storage, "ok", text_pdf(["ok"])), 1, 800)
    assert (image.width, count) == (800, 1)


def test_a_pdf_the_temporary_disk_cannot_hold_is_not_drawn_for_now(storage: Storage) -> None:
    """The worker's temporary directory is really full (a small filesystem full of other
    files): drawing a page of a PDF copied there is UNAVAILABLE (the server's trouble, try
    again), not a verdict on the file: once there is room, the same page is drawn. A PDF
    larger than the whole disk is never drawn there: FAILED_PRECONDITION, saying why."""
    mib = 1024 * 1024
    fits = stored(storage, "fits", text_pdf(["fits"]) + b"%" + b"x" * mib)
    big = stored(storage, "big", text_pdf(["too big"]) + b"%" + b"x" * (3 * mib))
    with small_tmp(2 * mib) as tmp:
        copies = LocalCopies(storage)
        try:
            filler = Path(tmp) / "other-files"
            filler.write_bytes(b"\0" * (3 * mib // 2))
            with pytest.raises(Unavailable, match="temporary disk is full"):
                render.draw_pdf_page(copies, fits, 1, 800)
            assert copies.kept() == []  # the failed copy is not kept
            filler.unlink()
            image, count = render.draw_pdf_page(copies, fits, 1, 800)
            assert (image.width, count) == (800, 1)
            with pytest.raises(FailedPrecondition, match="larger than the worker's temporary disk"):
                render.draw_pdf_page(copies, big, 1, 800)
        finally:
            copies.close()  # its directory is on the small disk, unmounted next


def test_an_image_frame_over_the_pixel_limit_is_not_drawn(
    storage: Storage, copies: LocalCopies
) -> None:
    key = stored(storage, "tiff", tiff_header(SIDE, SIDE))
    started = time.monotonic()
    with pytest.raises(FailedPrecondition, match="pixels"):
        render.draw_image(copies, key, 1, 800)
    assert time.monotonic() - started < 5


def test_a_tiff_of_fifty_thousand_pages_is_drawn_in_bounded_time(
    storage: Storage, copies: LocalCopies
) -> None:
    """Pillow counts a TIFF's pages in time quadratic in their number: 5 MB of 1 x 1 pages
    cost ~20 s of a RenderPage thread, 100,000 pages 87 s, and they are cheap to upload."""
    key = stored(storage, "pages", tiff_pages(50_000))
    assert analyse(storage, key).status == "READY"
    started = time.monotonic()
    image, count = render.draw_image(copies, key, 2, 800)
    assert (image.size, count) == ((1, 1), render.MAX_IMAGE_PAGES)
    with pytest.raises(NotFound, match="past the end"):
        render.draw_image(copies, key, render.MAX_IMAGE_PAGES + 1, 800)
    assert time.monotonic() - started < 30  # not the minutes of counting every page
    few = stored(storage, "few", tiff_pages(3))
    assert render.draw_image(copies, few, 3, 800)[1] == 3


def test_opening_a_pdf_is_bounded_in_memory_too(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening parses the page tree whole: 5 MB of references to one page cost ~90 MB of
    pdfium's memory (17 MB, 454 MB), in the worker itself before; now in a bounded child.
    The bound is lowered to 48 MiB here so that a small file shows it."""
    monkeypatch.setattr(analysis, "PDF_BOUNDS", PdfBounds(memory_bytes=48 * 1024 * 1024))
    found = analyse(storage, stored(storage, "tree", page_tree_bomb(1_000_000)))
    assert (found.status, found.page_count) == ("FAILED", 0)
    assert "within ByteReview's limits" in found.error
    assert "memory" in found.error
    ok = analyse(storage, stored(storage, "ok", text_pdf(["ok"], pages=2)))
    assert (ok.status, ok.page_count) == ("READY", 2)


def test_a_password_protected_pdf_says_so(storage: Storage) -> None:
    # The standard security handler with an unknown user password (the values are not
    # checked before the password is): pdfium asks for a password.
    encrypted = text_pdf(["secret"]).replace(
        b"/Root 1 0 R",
        b"/Root 1 0 R /Encrypt << /Filter /Standard /V 2 /R 3 /Length 128 /P -3904 "
        b"/O <"
        + b"11" * 32
        + b"> /U <"
        + b"22" * 32
        + b"> >> /ID [<"
        + b"33" * 16
        + b"> <"
        + b"33" * 16
        + b">]",
    )
    found = analyse(storage, stored(storage, "enc", encrypted))
    assert (found.status, found.error) == ("FAILED", "the PDF is password-protected")


def test_a_jpeg_of_thousands_of_scans_fails_at_analysis_and_is_not_drawn(
    storage: Storage,
    copies: LocalCopies,
) -> None:
    """Each scan of a progressive JPEG is decoded over the whole image, and an empty one is
    ~100 bytes: 1 MiB of them at 7000 x 7000 pixels took 43 CPU-seconds of a RenderPage
    thread (and of extraction), a 2 GiB upload hours. The count is judged before decoding."""
    bomb = jpeg_scan_bomb(2000, 3000)
    found = analyse(storage, stored(storage, "scans", bomb))
    assert (found.status, found.media_type) == ("FAILED", "image/jpeg")
    assert "holds 3000 scans" in found.error
    key = stored(storage, "scans-render", bomb)
    started = time.monotonic()
    with pytest.raises(FailedPrecondition, match="holds 3000 scans"):
        render.draw_image(copies, key, 1, 800)
    # Seconds, not the minutes of CPU (generous: the machine may be busy).
    assert time.monotonic() - started < 20
    progressive = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(progressive, "JPEG", progressive=True)
    ok = stored(storage, "progressive", progressive.getvalue())
    assert analyse(storage, ok).status == "READY"
    assert render.draw_image(copies, ok, 1, 300)[0].size == (300, 200)


def test_a_page_pillow_cannot_parse_past_the_first_is_a_clear_refusal(
    storage: Storage, copies: LocalCopies
) -> None:
    """Past the first frame, Pillow's TIFF parser raises what it meets: a second page
    without a width was a TypeError, and RenderPage answered 500."""
    out = io.BytesIO()
    pages = [Image.new("RGB", (40, 30)), Image.new("RGB", (40, 30))]
    pages[0].save(out, "TIFF", save_all=True, append_images=pages[1:])
    data = bytearray(out.getvalue())
    first = struct.unpack_from("<I", data, 4)[0]
    second = struct.unpack_from(
        "<I", data, first + 2 + 12 * struct.unpack_from("<H", data, first)[0]
    )[0]
    for at in range(second + 2, second + 2 + 12 * struct.unpack_from("<H", data, second)[0], 12):
        if struct.unpack_from("<H", data, at)[0] == 256:  # ImageWidth: renamed away
            struct.pack_into("<H", data, at, 65000)
    key = stored(storage, "two-pages", bytes(data))
    assert analyse(storage, key).status == "READY"  # its first page is fine
    assert render.draw_image(copies, key, 1, 100)[1] == 2
    with pytest.raises(FailedPrecondition, match="the image cannot be read"):
        render.draw_image(copies, key, 2, 100)


def test_a_webp_of_more_frames_than_its_bound_fails_at_analysis_and_is_not_drawn(
    storage: Storage, copies: LocalCopies
) -> None:
    """libwebp lists every frame of an animated WebP when it opens the file, ~90 bytes
    each: 64 MiB (within MAX_WEBP_BYTES) of one-pixel frames took 270 MB to open."""
    many = webp_frames(MAX_WEBP_CHUNKS + 1)
    found = analyse(storage, stored(storage, "frames", many))
    assert (found.status, found.media_type) == ("FAILED", "image/webp")
    assert f"more than {MAX_WEBP_CHUNKS} chunks" in found.error
    with pytest.raises(FailedPrecondition, match="frames"):
        render.draw_image(copies, "frames", 1, 800)
    few = stored(storage, "few", webp_frames(20))
    assert analyse(storage, few).status == "READY"
    assert render.draw_image(copies, few, 1, 800)[0].size == (100, 100)


def test_a_webp_larger_than_its_bound_fails_at_analysis_and_is_not_drawn(
    storage: Storage,
    copies: LocalCopies,
) -> None:
    """Pillow reads a WebP whole into memory before it looks at a frame: a 10 x 10 image
    padded to 300 MB took 587 MB of the process, and uploads may be 2 GiB."""
    padded = webp_padded(MAX_WEBP_BYTES)
    found = analyse(storage, stored(storage, "padded", padded))
    assert (found.status, found.media_type) == ("FAILED", "image/webp")
    assert f"WebP file is {len(padded)} bytes" in found.error
    with pytest.raises(FailedPrecondition, match="WebP file is"):
        render.draw_image(copies, stored(storage, "padded-render", padded), 1, 800)
    small = stored(storage, "small", webp_padded(1000))
    assert analyse(storage, small).status == "READY"
    assert render.draw_image(copies, small, 1, 800)[0].size == (10, 10)


def test_a_compressed_tiff_in_object_storage_is_not_read_whole_to_draw_a_page(
    fake_gcs: FakeGcs, tmp_path: Path
) -> None:
    """From a stream without a file descriptor (a GCS object), Pillow reads a compressed
    TIFF whole before libtiff decodes a page: a 2 GiB upload, 2 GiB of the ingest server."""
    bucket = f"t-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    httpx.post(f"{fake_gcs.url}/storage/v1/b", json={"name": bucket}).raise_for_status()
    gcs = make_storage(
        Settings(env="dev", storage_backend="gcs", gcs_bucket=bucket, gcs_endpoint=fake_gcs.url)
    )
    out = io.BytesIO()
    Image.new("RGB", (10, 10), "white").save(out, "TIFF", compression="tiff_lzw")
    mib = 1024 * 1024
    key = stored(gcs, "lzw", out.getvalue() + bytes(80 * mib))
    copies = LocalCopies(gcs)
    tracemalloc.start()
    try:
        image, count = render.draw_image(copies, key, 1, 800)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        copies.close()
    assert (image.size, count) == ((10, 10), 1)
    # Copied to disk a chunk at a time (the GCS reader's 4 MiB), not read whole.
    assert peak < 16 * mib, peak


def test_a_tiff_page_of_a_million_strips_fails_at_analysis_and_is_not_drawn(
    storage: Storage,
    copies: LocalCopies,
) -> None:
    """Pillow makes Python objects of every strip offset and count of a page: 1,000,000
    one-row strips (8 MB, 1 Mpx) took 340 MB and 8 s to open, 10,000,000 more memory than
    a worker has. The numbers a page lists are counted before Pillow opens it."""
    strips = tiff_strips(MAX_TIFF_PAGE_VALUES)
    found = analyse(storage, stored(storage, "strips", strips))
    assert (found.status, found.media_type) == ("FAILED", "image/tiff")
    assert "page 1 of the TIFF lists" in found.error
    key = stored(storage, "strips-render", strips)
    started = time.monotonic()
    with pytest.raises(FailedPrecondition, match="page 1 of the TIFF lists"):
        render.draw_image(copies, key, 1, 800)
    # Seconds, not the minutes of CPU (generous: the machine may be busy).
    assert time.monotonic() - started < 20
    fine = stored(storage, "fine", tiff_strips(1000))
    assert analyse(storage, fine).status == "READY"
    assert render.draw_image(copies, fine, 1, 800)[0].size == (1, 1000)


def test_drawing_a_late_tiff_page_is_bounded_by_the_pages_parsed_before_it(
    storage: Storage,
    copies: LocalCopies,
) -> None:
    """Pillow parses every page before the one drawn: each page under the bound, together
    far over it, is refused from its page on, the early pages still drawn."""
    per_page = MAX_TIFF_PAGE_VALUES // 2 - 5
    pages = render.PAGES_VALUES // MAX_TIFF_PAGE_VALUES + 2
    key = stored(storage, "late", tiff_strips(per_page, pages=pages))
    with pytest.raises(FailedPrecondition, match=f"pages 1 to {pages} of the TIFF list more"):
        render.draw_image(copies, key, pages, 100)
    image, count = render.draw_image(copies, key, 1, 100)
    assert image.width == 1
    assert count == pages


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (jpeg_padded(segments=1_000_000), "segments"),
        (jpeg_padded(stray=4_000_000), "stray bytes"),
    ],
    ids=["segments", "stray"],
)
def test_a_jpeg_pillow_would_walk_for_long_before_its_image_fails_and_is_not_drawn(
    storage: Storage, copies: LocalCopies, data: bytes, phrase: str
) -> None:
    """Pillow walks a JPEG's segments before its first scan in Python, keeping each APP
    segment, and its stray bytes one read at a time: 4 MB of empty segments took 146 MB."""
    found = analyse(storage, stored(storage, "padded", data))
    assert (found.status, found.media_type) == ("FAILED", "image/jpeg")
    assert phrase in found.error
    started = time.monotonic()
    with pytest.raises(FailedPrecondition, match=phrase):
        render.draw_image(copies, stored(storage, "padded-render", data), 1, 800)
    # Seconds, not the minutes of CPU (generous: the machine may be busy).
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (png_chunks(20_000), "chunks other than its image"),
        (png_chunks(1_100_000, kind=b"IDAT"), "1000000 chunks"),
        (gif_comment(2 * 1024 * 1024), "bytes before its image"),
        (bmp_header_claim(2**31 - 1, 1000), "BMP declares a 2147483647-byte header"),
    ],
    ids=["png-private", "png-empty-idat", "gif-comment", "bmp-header"],
)
def test_a_png_or_gif_pillow_would_walk_for_long_fails_and_is_not_drawn(
    storage: Storage, copies: LocalCopies, data: bytes, phrase: str
) -> None:
    """Pillow walks PNG chunks and GIF blocks in Python and keeps private chunks and
    comments: 12 MB of empty private chunks took 115 MB, 20 MB of comment 64 MB."""
    found = analyse(storage, stored(storage, "walked", data))
    assert found.status == "FAILED"
    assert phrase in found.error
    started = time.monotonic()
    with pytest.raises(FailedPrecondition, match=phrase):
        render.draw_image(copies, stored(storage, "walked-render", data), 1, 800)
    # Seconds, not the minutes of CPU (generous: the machine may be busy).
    assert time.monotonic() - started < 20
    for n, fine in enumerate((png_chunks(100), gif_comment(10_000))):
        key = stored(storage, f"fine-{n}", fine)
        assert analyse(storage, key).status == "READY"
        assert render.draw_image(copies, key, 1, 800)[0].size == (8, 8)
