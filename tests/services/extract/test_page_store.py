"""What OCR read of a stored file is kept beside it and serves every later task over it."""

from __future__ import annotations

import gzip
import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bytereview.core import storage_keys
from bytereview.core.storage import LocalStorage
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.extract import documents
from services.extract.base import Box, Document
from services.extract.reading import page_store
from services.extract.reading import pages as reading
from services.extract.reading.pages import PageText, document_pages
from tests.pdfs import joined_pdf, text_pdf
from tests.services.extract.test_offline import receipt_png

LINES = ["ACME TRADING", "TOTAL RM 60.31"]


def scan_png() -> bytes:
    return receipt_png(LINES)


def scan_pdf() -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(scan_png())).save(out, format="PDF")  # no text layer
    return out.getvalue()


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(root=tmp_path, public_url="http://x", secret="s" * 32, ttl_seconds=60)


@pytest.fixture
def ocr_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pages the real OCR read (it still does the reading)."""
    calls: list[int] = []
    real = reading.ocr_page

    def counted(image: Any, number: int = 1, charge: Any = None) -> PageText:
        calls.append(number)
        return real(image, number, charge)

    monkeypatch.setattr(reading, "ocr_page", counted)
    return calls


def store(storage: LocalStorage, data: bytes, key: str = "") -> str:
    key = key or storage_keys.upload_key(uuid.uuid4().hex, uuid.uuid4().hex)
    with storage.open_write(key) as handle:
        handle.write(data)
    return key


def task_document(storage: LocalStorage, key: str, media_type: str) -> Document:
    """The stored file as a new task sees it: nothing read yet."""
    file = worker_pb.TaskFile(name="f", original_path="a/f", storage_key=key, media_type=media_type)
    return documents(storage, [file])[0]


def kept(storage: LocalStorage, key: str) -> str | None:
    """The reading kept for the file at `key`, if any."""
    where = storage_keys.reading_key(key, page_store.READING_VERSION)
    assert where is not None
    return where if storage.size(where) is not None else None


@pytest.mark.parametrize(
    ("make", "media_type"), [(scan_png, "image/png"), (scan_pdf, "application/pdf")]
)
async def test_a_scan_is_read_by_ocr_once_for_every_task_over_it(
    storage: LocalStorage,
    ocr_calls: list[int],
    make: Callable[[], bytes],
    media_type: str,
) -> None:
    key = store(storage, make())
    pages = await document_pages(task_document(storage, key, media_type))
    assert "60.31" in pages[0].text.replace(" ", "")
    assert ocr_calls == [1]
    reading_key = kept(storage, key)
    assert reading_key is not None
    assert storage_keys.is_in_job(reading_key, str(storage_keys.job_of_key(key)))
    # Later tasks over the same file (a re-run, a preview, a template version's scoring).
    for _ in range(2):
        assert await document_pages(task_document(storage, key, media_type)) == pages
    assert ocr_calls == [1]


async def test_a_text_layer_is_read_every_time_and_nothing_is_kept(
    storage: LocalStorage, ocr_calls: list[int]
) -> None:
    key = store(storage, text_pdf(LINES, pages=2))
    pages = await document_pages(task_document(storage, key, "application/pdf"))
    assert [p.text.splitlines()[0] for p in pages] == ["ACME TRADING"] * 2
    assert ocr_calls == []
    assert kept(storage, key) is None


async def test_text_pages_before_a_scan_are_read_once(
    storage: LocalStorage, ocr_calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first pass stops at the scan to look for a kept reading; the second goes on from
    there (it read the text pages again)."""
    text_reads: list[int] = []
    real = reading._call

    def counted(document: Document, opened: Any, operation: str, *args: Any) -> Any:
        if operation == "page_text":
            text_reads.append(args[0])
        return real(document, opened, operation, *args)

    monkeypatch.setattr(reading, "_call", counted)
    key = store(storage, joined_pdf(text_pdf(LINES, pages=2), scan_pdf()))
    pages = await document_pages(task_document(storage, key, "application/pdf"))
    assert [p.number for p in pages] == [1, 2, 3]
    assert pages[1].text.splitlines()[0] == "ACME TRADING"
    assert "60.31" in pages[2].text.replace(" ", "")
    assert ocr_calls == [3]
    assert sorted(text_reads) == [0, 1, 2, 2]  # the scan asked twice: once per pass
    assert kept(storage, key) is not None


# The current version's header, so that each damage below is what makes it unreadable.
_V = b'{"version": %d, ' % page_store.READING_VERSION
DAMAGED = [
    b"not gzip",
    gzip.compress(b"not json"),
    # An older reading version's: what OCR read then is not what it reads now.
    gzip.compress(
        b'{"version": %d, "pages": [{"number": 1, "text": "a", "boxes": [null], "scores": []}]}'
        % (page_store.READING_VERSION - 1)
    ),
    gzip.compress(_V + b'"pages": [{"number": 1, "text": "ab", "boxes": [null], "scores": []}]}'),
    gzip.compress(
        _V + b'"pages": [{"number": 1, "text": "a", "boxes": [[0, 0, 1, NaN]], "scores": []}]}'
    ),
    gzip.compress(_V + b'"pages": [{"number": "1", "text": "", "boxes": [], "scores": []}]}'),
    gzip.compress(_V + b'"pages": [{"number": 1}]}'),
]


@pytest.mark.parametrize(
    "damage",
    DAMAGED,
    ids=["not-gzip", "not-json", "old-version", "boxes-short", "nan", "number-text", "no-text"],
)
async def test_a_damaged_reading_does_not_read_back(storage: LocalStorage, damage: bytes) -> None:
    key = store(storage, b"the file itself")
    readings = page_store.StoredReadings.of(storage, key)
    assert readings is not None
    assert await readings.load() is None  # none kept yet
    where = storage_keys.reading_key(key, page_store.READING_VERSION)
    assert where is not None
    store(storage, damage, key=where)
    assert await readings.load() is None


async def test_a_damaged_reading_is_read_again_and_replaced(
    storage: LocalStorage, ocr_calls: list[int]
) -> None:
    key = store(storage, scan_png())
    where = storage_keys.reading_key(key, page_store.READING_VERSION)
    assert where is not None
    store(storage, DAMAGED[1], key=where)
    pages = await document_pages(task_document(storage, key, "image/png"))
    assert ocr_calls == [1]
    with storage.open_read(where) as handle:
        assert page_store.load(handle.read()) == pages


async def test_a_reading_of_another_page_count_is_not_used(
    storage: LocalStorage, ocr_calls: list[int]
) -> None:
    key = store(storage, scan_pdf())
    where = storage_keys.reading_key(key, page_store.READING_VERSION)
    assert where is not None
    two = [PageText(n, "x", (None,), (0.9,)) for n in (1, 2)]
    store(storage, page_store.dump(two), key=where)
    pages = await document_pages(task_document(storage, key, "application/pdf"))
    assert len(pages) == 1
    assert ocr_calls == [1]


def test_files_outside_a_job_keep_no_reading(storage: LocalStorage) -> None:
    # Golden documents and other files outside the job layout: nothing to delete them with.
    assert task_document(storage, "templates/abc/golden.png", "image/png").readings is None
    inside = storage_keys.upload_key("a" * 32, "b" * 32)
    assert task_document(storage, inside, "image/png").readings is not None
    # A new reading version is kept apart from the old one.
    assert storage_keys.reading_key(inside, 1) != storage_keys.reading_key(inside, 2)


def test_dump_and_load_keep_every_box_and_score() -> None:
    pages = [
        PageText(
            1,
            "ab\nc",
            (Box(0.1, 0.2, 0.3, 0.4), Box(0.3, 0.2, 0.5, 0.4), None, None),
            (
                0.98,
                0.98,
                None,
                0.5,
            ),
        ),
        PageText(2, "", (), ()),
    ]
    assert page_store.load(page_store.dump(pages)) == pages


def test_a_reading_that_unpacks_past_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    pages = [PageText(1, "x" * 1000, (None,) * 1000, ())]
    data = page_store.dump(pages)
    assert page_store.load(data) == pages
    monkeypatch.setattr(page_store, "MAX_READING_BYTES", 500)  # a few hundred bytes packed
    assert len(data) < 500
    assert page_store.load(data) is None
