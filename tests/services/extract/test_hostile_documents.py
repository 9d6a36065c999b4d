"""Hostile documents through the functions the extract worker reads tasks' files with: each
fails its own file with a reason (a non-retryable ExtractionError) within bounded time and
memory, and the next document of the process reads as before."""

from __future__ import annotations

import asyncio
import functools
import io
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from bytereview.core.limits import (
    MAX_DOCUMENT_TEXT_CHARS,
    MAX_IMAGE_PIXELS,
    MAX_PAGE_TEXT_CHARS,
    MAX_TIFF_PAGE_VALUES,
    MAX_WEBP_BYTES,
)
from bytereview.core.outages import is_outage
from bytereview.core.pdf_process import PdfBounds
from bytereview.core.spool import SpoolFull
from services.extract.base import Document, ExtractionError
from services.extract.offline.extractor import MAX_LINE, bounded_lines, find_value
from services.extract.reading import pages as reading
from services.extract.reading.pages import MAX_RENDER_PIXELS, document_pages, pdf_reading_order
from services.extract.schema import Field
from tests.core.test_pdf_process import reaped_children_cpu
from tests.hostile_documents import (
    blank_page,
    bmp_header_claim,
    gif_comment,
    jpeg_padded,
    jpeg_scan_bomb,
    pdf,
    png_chunks,
    png_header_bomb,
    stream,
    text_bomb,
    tiff_header,
    tiff_strips,
    webp_frames,
    webp_padded,
    xobject_bomb,
)
from tests.pdfs import joined_pdf, text_pdf
from tests.services.extract.test_page_store import scan_pdf
from tests.small_disk import small_tmp


def document(data: bytes, media_type: str, path: str = "hostile") -> Document:
    return Document("f", path, media_type, functools.partial(io.BytesIO, data))


async def test_a_page_pdfium_would_expand_for_minutes_fails_its_file_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """4**11 drawings of one form: read in the worker, pdfium held its lock (and every PDF
    of the process) for as long as it ran, and took gigabytes."""
    monkeypatch.setattr(reading, "PDF_BOUNDS", PdfBounds(seconds=3))
    before = reaped_children_cpu()
    with pytest.raises(ExtractionError, match=r"bomb.pdf: page 1 cannot be read") as caught:
        await document_pages(document(xobject_bomb(12), "application/pdf", "bomb.pdf"))
    assert not caught.value.retryable
    # 3 CPU-seconds (or the memory cap, on a machine fast enough to reach it first), not the
    # minutes of CPU the page takes.
    assert reaped_children_cpu() - before < 30
    pages = await document_pages(document(text_pdf(["Invoice Number: INV-9"]), "application/pdf"))
    assert "INV-9" in pages[0].text


async def test_a_text_layer_deflated_from_a_few_kib_fails_before_it_reaches_the_worker() -> None:
    """A 5 KiB PDF of 2,000,000 characters on a page crossed from the PDF child with a box
    per character: 577 MB of the worker's memory. The child counts the characters first;
    a document's pages together are bounded too (each page may draw the same stream)."""
    bomb = text_bomb(2 * MAX_PAGE_TEXT_CHARS)
    assert len(bomb) < 10_000
    tracemalloc.start()
    try:
        with pytest.raises(
            ExtractionError, match=r"text.pdf: page 1 cannot be read .*200"
        ) as caught:
            await document_pages(document(bomb, "application/pdf", "text.pdf"))
        assert not caught.value.retryable
        with pytest.raises(ExtractionError, match="page 1 cannot be read"):
            await pdf_reading_order(document(bomb, "application/pdf", "text.pdf"))
        assert tracemalloc.get_traced_memory()[1] < 20_000_000
    finally:
        tracemalloc.stop()
    per_page = 40_000  # and ~100 line breaks pdfium adds: 12 pages fit, the 13th does not
    pages = MAX_DOCUMENT_TEXT_CHARS // per_page + 1
    many = text_bomb(per_page, pages=pages)
    with pytest.raises(ExtractionError, match=rf"page {pages} cannot be read") as caught:
        await document_pages(document(many, "application/pdf", "many.pdf"))
    assert not caught.value.retryable
    with pytest.raises(ExtractionError, match=rf"page {pages} cannot be read"):
        await pdf_reading_order(document(many, "application/pdf", "many.pdf"))
    # Under both bounds, every page is read.
    read = await document_pages(document(text_bomb(20_000, pages=3), "application/pdf"))
    assert [p.text.count("A") for p in read] == [20_000] * 3


def test_a_page_of_glyphs_on_one_baseline_is_put_in_reading_order_in_linear_time() -> None:
    """Each glyph placed apart is a run of its own (20,000 from a 1 KB PDF); the row a run
    joins was measured again over all its runs per run: 19 CPU-seconds of the worker."""
    runs = [(100.0, 110.0, 3.0 * i, 3.0 * i + 2.0, "A") for i in range(20_000)]
    started = time.process_time()
    text = reading._page_reading_order(runs)
    assert time.process_time() - started < 2
    assert text == "A" * 20_000  # one line: glyph by glyph, no gaps inside a word


def test_lines_of_a_text_layer_cost_the_matchers_linear_time() -> None:
    """A page's text layer may be one line of 100,000 characters; some of the offline
    matchers' patterns are quadratic in a line's length (20,000 spaces: ~9 CPU-seconds of
    the worker's event loop). Long lines are matched in pieces; short ones as they are."""
    text = "\n".join(
        ["(" + "1" * 20_000 + "(", "A" + " " * 20_000 + "!", "ACME TRADING", "Invoice No: 12345"]
    )
    started = time.process_time()
    for name in ("company", "address", "total", "invoice number"):
        found = find_value(text, Field(name, "text", ""))
    assert time.process_time() - started < 2
    assert found == "12345"
    assert bounded_lines("short\nlines") == "short\nlines"
    assert max(len(line) for line in bounded_lines(text).splitlines()) <= MAX_LINE


async def test_a_damaged_pdf_is_a_clear_failure() -> None:
    with pytest.raises(ExtractionError, match="cannot read the PDF") as caught:
        await document_pages(document(b"%PDF-1.4\n1 0 obj <<", "application/pdf"))
    assert not caught.value.retryable


async def test_a_huge_scanned_page_is_drawn_within_the_pixel_bound() -> None:
    """14,400 pt square at 200 dpi would be a 40,000 px square bitmap (4.8 GB)."""
    opened = reading._open_pdf(document(blank_page(14_400, 14_400), "application/pdf"))
    try:
        page, image = reading._page_text_or_image(document(b"", "application/pdf"), opened, 0)
    finally:
        opened.close()
    assert page is None
    assert image.width * image.height <= MAX_RENDER_PIXELS
    assert image.width > 4000  # drawn as large as the bound allows, not given up on


async def test_an_image_declaring_more_pixels_than_allowed_is_refused_before_decoding() -> None:
    side = int(MAX_IMAGE_PIXELS**0.5) + 100
    for data, kind in (
        (png_header_bomb(side, side), "image/png"),
        (tiff_header(side, side), "image/tiff"),
    ):
        started = time.monotonic()
        with pytest.raises(ExtractionError, match=f"{side} x {side} pixels") as caught:
            await document_pages(document(data, kind))
        assert not caught.value.retryable
        assert time.monotonic() - started < 5, kind


async def test_a_jpeg_of_thousands_of_scans_is_refused_before_decoding() -> None:
    """libjpeg decodes every scan over the whole image: these 3,000 empty ones (300 KiB) took
    seconds here, 10,000 at 7000 x 7000 pixels 43 CPU-seconds of the worker; unbounded."""
    started = time.monotonic()
    with pytest.raises(ExtractionError, match=r"scans\.jpg: the JPEG holds 3000 scans") as caught:
        await document_pages(document(jpeg_scan_bomb(2000, 3000), "image/jpeg", "scans.jpg"))
    assert not caught.value.retryable
    # Seconds, not the minutes of CPU (generous: the machine may be busy).
    assert time.monotonic() - started < 20


async def test_an_image_too_long_and_narrow_for_ocr_fails_saying_so() -> None:
    """OCR scales the long side to 2,000 px and each side to a multiple of 32: past ~125:1
    the short side is nothing, and rapidocr raised a bare ResizeImgError, which the worker
    retried to exhaustion as an internal error (a combined folder's task with it)."""
    with pytest.raises(ExtractionError, match="1000000 x 1 pixels, too long and narrow") as caught:
        await document_pages(document(png_header_bomb(1_000_000, 1), "image/png"))
    assert not caught.value.retryable
    [page] = await document_pages(document(png_header_bomb(3000, 100), "image/png"))
    assert page.text == ""  # 30:1 is read (blank here)


async def test_a_pdf_page_too_long_and_narrow_for_ocr_is_empty_and_the_rest_is_read() -> None:
    strip = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14400 3] /Contents 5 0 R >>"
    text = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 6 0 R"
        b" /Resources << /Font << /F1 7 0 R >> >> >>"
    )
    data = pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
            strip,
            text,
            stream(b"0 0 0 rg 0 0 14400 3 re f"),
            stream(b"BT /F1 24 Tf 72 700 Td (Invoice number 4711) Tj ET"),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )
    first, second = await document_pages(document(data, "application/pdf"))
    assert first.text == ""
    assert "Invoice number 4711" in second.text


async def test_a_webp_of_more_frames_than_its_bound_is_refused_before_decoding() -> None:
    """libwebp lists every frame when it opens the file, to decode the first."""
    with pytest.raises(ExtractionError, match=r"anim\.webp: the WebP holds more than") as caught:
        await document_pages(document(webp_frames(10_001), "image/webp", "anim.webp"))
    assert not caught.value.retryable


async def test_a_webp_larger_than_its_bound_is_refused_before_decoding() -> None:
    """Pillow reads a WebP whole into memory (and libwebp copies it) before it looks at a
    frame: 300 MB of padding around 10 x 10 pixels took 587 MB of the worker."""
    padded = webp_padded(MAX_WEBP_BYTES)
    with pytest.raises(
        ExtractionError, match=f"pad.webp: the WebP file is {len(padded)}"
    ) as caught:
        await document_pages(document(padded, "image/webp", "pad.webp"))
    assert not caught.value.retryable
    [page] = await document_pages(document(webp_padded(1000), "image/webp"))
    assert page.number == 1


async def test_a_tiff_page_of_a_million_strips_is_refused_before_pillow_opens_it() -> None:
    """1,000,000 one-row strips (8 MB, 1 Mpx) took 340 MB and 8 s to open in the worker."""
    started = time.monotonic()
    with pytest.raises(ExtractionError, match=r"strips\.tif: page 1 of the TIFF lists") as caught:
        await document_pages(
            document(tiff_strips(MAX_TIFF_PAGE_VALUES), "image/tiff", "strips.tif")
        )
    assert not caught.value.retryable
    # Seconds, not the minutes of CPU (generous: the machine may be busy).
    assert time.monotonic() - started < 20


async def test_a_jpeg_of_a_million_segments_is_refused_before_pillow_walks_them() -> None:
    """Pillow keeps each APP segment before the image: 4 MB of empty ones took 146 MB."""
    with pytest.raises(ExtractionError, match="more than 1000 segments") as caught:
        await document_pages(document(jpeg_padded(segments=1_000_000), "image/jpeg"))
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("data", "kind", "phrase"),
    [
        (png_chunks(20_000), "image/png", "chunks other than its image"),
        (gif_comment(2 * 1024 * 1024), "image/gif", "bytes before its image"),
        (bmp_header_claim(2**31 - 1, 1000), "image/bmp", "2147483647-byte header"),
    ],
    ids=["png-private", "gif-comment", "bmp-header"],
)
async def test_a_png_or_gif_pillow_would_walk_for_long_is_refused(
    data: bytes, kind: str, phrase: str
) -> None:
    """Pillow keeps a PNG's private chunks (12 MB of empty ones took 115 MB) and a GIF's
    comments whole, walking both in Python."""
    with pytest.raises(ExtractionError, match=phrase) as caught:
        await document_pages(document(data, kind))
    assert not caught.value.retryable


async def test_a_truncated_image_is_a_clear_failure() -> None:
    with pytest.raises(ExtractionError, match="cannot read the image") as caught:
        await document_pages(document(png_header_bomb(64, 64)[:40], "image/png"))
    assert not caught.value.retryable


async def test_an_image_no_decoder_knows_fails_in_words_not_internals() -> None:
    """Pillow names the file object it was given ("cannot identify image file
    <tempfile.SpooledTemporaryFile object at 0x7f...>"): the reason a user read on the job
    page for a damaged receipt."""
    with pytest.raises(ExtractionError) as caught:
        await document_pages(document(b"\xff\xd8\xff" + b"x" * 100, "image/jpeg", "r.jpg"))
    assert str(caught.value) == "r.jpg: cannot read the image (cannot identify image file)"
    assert not caught.value.retryable


def _printed(mode: str) -> Image.Image:
    """`TOTAL 12.50` in black on white, in `mode`."""
    image = Image.new("RGB", (420, 120), "white")
    ImageDraw.Draw(image).text((10, 30), "TOTAL 12.50", fill="black", font_size=40)
    if mode in ("I;16", "I", "F"):
        return image.convert("L").convert(mode)
    return image.convert(mode)


@pytest.mark.parametrize(
    ("mode", "fmt", "media"),
    [
        ("CMYK", "JPEG", "image/jpeg"),
        ("CMYK", "TIFF", "image/tiff"),
        ("P", "GIF", "image/gif"),
        ("I", "TIFF", "image/tiff"),
        ("I;16", "PNG", "image/png"),
    ],
)
async def test_images_in_unusual_modes_are_read_as_they_look(
    mode: str, fmt: str, media: str
) -> None:
    """CMYK and palette images were read as nothing at all (the OCR engine took CMYK's
    channels for RGBA and palette indices for grey), and a 32-bit TIFF failed."""
    out = io.BytesIO()
    _printed(mode).save(out, format=fmt)
    pages = await document_pages(document(out.getvalue(), media))
    assert "TOTAL" in pages[0].text, (mode, fmt, pages[0].text)


def test_a_16_bit_image_is_stretched_to_8_bits_in_bands() -> None:
    """As float32 whole (and its temporaries) a 7000 x 7000 16-bit scan took 560 MB more
    than its pixels, beside the OCR engine in a worker of 1 GiB: now one byte a pixel (the
    8-bit result) and a band. The result is the same."""
    import numpy as np

    noise = np.random.default_rng(7).integers(0, 65535, (3000, 4000), dtype=np.uint16)
    image = Image.fromarray(noise)
    assert image.mode == "I;16"
    pixels = noise.astype(np.float32)
    whole = ((pixels - pixels.min()) * (255.0 / (pixels.max() - pixels.min()))).astype(np.uint8)
    del pixels
    tracemalloc.start()
    try:
        stretched = reading.ocr_input(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (np.asarray(stretched) == whole).all()
    assert peak < 2 * image.width * image.height, peak  # 4 to 12 bytes a pixel before


async def test_pages_pdfium_cannot_load_are_empty_and_the_rest_is_read() -> None:
    """The page tree claims 1,000 pages (pdfium believes /Count); only the first exists."""
    real = text_pdf(["Invoice Number: INV-31"])
    lying = real.replace(b"/Count 1", b"/Count 1000", 1)
    assert lying != real
    pages = await document_pages(document(lying, "application/pdf"))
    assert "INV-31" in pages[0].text
    assert [p.text for p in pages[1:]] == [""] * (reading.MAX_PAGES - 1)
    assert "INV-31" in await reading.pdf_reading_order(document(lying, "application/pdf"))


async def test_more_documents_at_once_than_pdf_children_and_threads_all_finish() -> None:
    """Readers wait for one of the few PDF children in a thread of the pool: had a reader
    holding a child needed another thread for its next page, readers waiting for a child
    could hold every thread, and nothing would move again."""
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=3))
    docs = [
        document(text_pdf([f"Invoice Number: INV-{i}"], pages=3), "application/pdf")
        for i in range(10)
    ]
    read = await asyncio.wait_for(asyncio.gather(*(document_pages(d) for d in docs)), 120)
    assert [p[0].text.strip() for p in read] == [f"Invoice Number: INV-{i}" for i in range(10)]


async def test_an_image_file_is_not_held_whole_in_memory(tmp_path: Path) -> None:
    """A TIFF whose later pages make it 48 MB: only its first page is read, and the file
    is spooled to disk rather than read into memory (8 tasks at once, 2 GiB each, before).
    Measured against the same first page alone: OCR takes its own ~90 MB either way."""

    def tiff(pages: int) -> bytes:
        out = io.BytesIO()
        rest = [Image.new("L", (4000, 4000), 255) for _ in range(pages - 1)]
        _printed("RGB").save(out, format="TIFF", save_all=True, append_images=rest)
        return out.getvalue()

    async def peak(data: bytes) -> int:
        stored = tmp_path / "scan.tiff"
        stored.write_bytes(data)  # read back as storage reads it: a file, not shared bytes
        tracemalloc.start()
        try:
            pages = await document_pages(
                Document("f", "scan.tiff", "image/tiff", lambda: stored.open("rb"))
            )
            highest = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert "TOTAL" in pages[0].text
        return highest

    small, big = tiff(1), tiff(4)
    assert len(big) > 40 * 1024 * 1024
    alone = await peak(small)
    assert await peak(big) < alone + 24 * 1024 * 1024


async def test_a_file_larger_than_the_temporary_disk_fails_at_once_saying_so() -> None:
    """The worker's temporary directory is a small filesystem (a bounded emptyDir): a PDF
    copied there for pdfium, or an image too large to keep in memory, that is larger than
    the whole disk can never be copied: its file fails, saying so, on its first attempt.
    A file that fits is read as before."""
    mib = 1024 * 1024
    big_pdf = text_pdf(["too big"]) + b"%" + b"x" * (3 * mib)  # after %%EOF: still a PDF
    png = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(png, format="PNG")
    # Past the in-memory size: copied to disk. Bytes after IEND are ignored by decoders.
    big_png = png.getvalue() + b"\0" * (reading.IMAGE_IN_MEMORY + 3 * mib)
    with small_tmp(2 * mib):
        for data, kind, name in (
            (big_pdf, "application/pdf", "big.pdf"),
            (big_png, "image/png", "big.png"),
        ):
            with pytest.raises(ExtractionError, match=f"{name}: .* larger than the worker's") as e:
                await document_pages(document(data, kind, name))
            assert not e.value.retryable
        pages = await document_pages(document(text_pdf(["INV-11"]), "application/pdf"))
        assert "INV-11" in pages[0].text


async def test_a_temporary_disk_full_of_other_files_is_an_outage_not_the_files_fault() -> None:
    """The same disk, full of other copies: a file that fits once they are gone is not
    failed, its reading stops with SpoolFull, which the worker waits out as an outage
    (holding the message, no attempt spent); once the disk has room it is read."""
    mib = 1024 * 1024
    pdf = text_pdf(["INV-12"]) + b"%" + b"x" * mib
    with small_tmp(2 * mib) as tmp:
        filler = Path(tmp) / "other-copies"
        filler.write_bytes(b"\0" * int(1.5 * mib))
        with pytest.raises(SpoolFull, match="temporary disk is full") as e:
            await document_pages(document(pdf, "application/pdf", "fits.pdf"))
        assert not e.value.never_fits
        assert is_outage(e.value)
        filler.unlink()
        pages = await document_pages(document(pdf, "application/pdf", "fits.pdf"))
        assert "INV-12" in pages[0].text


def scan_then_text_pdf() -> bytes:
    return joined_pdf(scan_pdf(), text_pdf(["after the scan"]))


async def test_a_scanned_pdfs_ocr_counts_in_its_documents_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OCR is the caller's work on the document: charged, it ends a document of many
    dense scans (checked at its next call), as a wall-clock deadline used to."""
    monkeypatch.setattr(reading, "PDF_BOUNDS", PdfBounds(document_seconds=0.2))
    with pytest.raises(ExtractionError, match=r"scan.pdf: .*took more than 0\.2 CPU-seconds"):
        await document_pages(document(scan_then_text_pdf(), "application/pdf", "scan.pdf"))


async def test_waiting_for_the_ocr_engine_costs_a_scanned_pdf_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Eight scanned PDFs read at once take the engine in turn: each waits far longer than
    it works, and a wall-clock bound failed long ones for good."""
    monkeypatch.setattr(reading, "PDF_BOUNDS", PdfBounds(document_seconds=8))
    held = asyncio.Event()

    def hold_the_engine() -> None:
        with reading._OCR_LOCK:
            loop.call_soon_threadsafe(held.set)
            time.sleep(10)  # another document's pages, longer than this one's whole bound

    loop = asyncio.get_running_loop()
    holder = loop.run_in_executor(None, hold_the_engine)
    await held.wait()
    pages = await document_pages(document(scan_then_text_pdf(), "application/pdf", "scan.pdf"))
    await holder
    assert "60.31" in pages[0].text.replace(" ", "")
    assert pages[1].text.startswith("after the scan")
