"""The no-op extractor is a benchmarking stand-in: selectable in dev mode only."""

from __future__ import annotations

from typing import Any, BinaryIO

import pytest

from bytereview.core import Settings
from services.extract import Field, OfflineExtractor
from services.extract.base import Document, ExtractionError, ExtractionRequest
from services.extract.noop import NOOP_EXTRACTOR_NAME, NoopExtractor
from services.extract.worker import make_extractor

REAL_SECRETS: dict[str, Any] = {"signing_secret": "s" * 32, "worker_token": "w" * 32}


def test_production_settings_refuse_the_bench_extractor(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the Helm chart's pods read: BYTEREVIEW_ENV=production from the environment.
    monkeypatch.setenv("BYTEREVIEW_ENV", "production")
    monkeypatch.setenv("BYTEREVIEW_BENCH_EXTRACTOR", "noop")
    monkeypatch.setenv("BYTEREVIEW_SIGNING_SECRET", "s" * 32)
    monkeypatch.setenv("BYTEREVIEW_WORKER_TOKEN", "w" * 32)
    with pytest.raises(ValueError, match="refused with BYTEREVIEW_ENV=production"):
        Settings()


def test_production_never_makes_the_noop_extractor() -> None:
    settings = Settings(env="production", **REAL_SECRETS)
    assert isinstance(make_extractor(settings), OfflineExtractor)


def test_an_unknown_bench_extractor_is_refused() -> None:
    with pytest.raises(ValueError, match="BENCH_EXTRACTOR must be one of"):
        Settings(bench_extractor="fast")


async def test_dev_mode_selects_it_and_it_answers_nulls_without_reading() -> None:
    extractor = make_extractor(Settings(bench_extractor="noop"))
    assert isinstance(extractor, NoopExtractor)
    assert extractor.name == NOOP_EXTRACTOR_NAME
    fields = [Field("total", "currency", ""), Field("date", "date_ymd", "")]
    got = await extractor.extract(ExtractionRequest(fields=fields, types={}, documents=[]))
    assert got.values == {"total": None, "date": None}
    await extractor.aclose()


async def test_its_failing_mode_fails_every_task_for_good() -> None:
    extractor = make_extractor(Settings(bench_extractor="noop-fail"))
    assert isinstance(extractor, NoopExtractor)
    request = ExtractionRequest(fields=[Field("total", "currency", "")], types={}, documents=[])
    with pytest.raises(ExtractionError) as failed:
        await extractor.extract(request)
    assert not failed.value.retryable


async def test_it_leaves_an_image_read_as_a_blank_page_and_a_pdf_unread() -> None:
    """The worker's evidence check then OCRs no image (services/extract/noop.py)."""

    def unopenable() -> BinaryIO:
        raise AssertionError("the noop extractor opened a document")

    image = Document(name="a", path="a.png", media_type="image/png", open=unopenable)
    pdf = Document(name="b", path="b.pdf", media_type="application/pdf", open=unopenable)
    request = ExtractionRequest(fields=[], types={}, documents=[image, pdf])
    await NoopExtractor().extract(request)
    assert [p.text for p in image.pages] == [""]
    assert pdf.pages == []
