"""An extract worker's decoded images held at once, bounded by their pixels (core/pixel_budget.py)."""

from __future__ import annotations

import functools
import io
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, ImageDraw, ImageFont

from bytereview.core.pixel_budget import DECODED, PixelBudget
from services.extract.base import Document
from services.extract.reading import pages as reading


def _until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_small_images_share_the_budget_and_a_large_one_waits_for_them() -> None:
    budget = PixelBudget(100)
    inside = threading.Event()

    def read_large() -> None:
        with budget.held(30):
            inside.set()

    with ThreadPoolExecutor(1) as pool:
        with budget.held(40), budget.held(40):  # two at once
            large = pool.submit(read_large)
            _until(lambda: budget.waiting == 1)
            assert not inside.is_set()  # 40 + 40 + 30 > 100: it waits
        large.result(timeout=5)
    assert inside.is_set()


def test_an_image_larger_than_the_budget_is_read_alone_not_refused() -> None:
    budget = PixelBudget(100)
    order: list[str] = []

    def read(name: str, pixels: int) -> None:
        with budget.held(pixels):
            order.append(f"{name} in")
            time.sleep(0.05)
            order.append(f"{name} out")

    with ThreadPoolExecutor(2) as pool:
        with budget.held(10):
            huge = pool.submit(read, "huge", 10_000)
            _until(lambda: budget.waiting == 1)
            order.append("small out")
        huge.result(timeout=5)
        # Alone: it took the whole budget, so the next one waits for it.
        after = pool.submit(read, "next", 1)
        after.result(timeout=5)
    assert order == ["small out", "huge in", "huge out", "next in", "next out"]


def test_a_budget_needs_a_pixel() -> None:
    with pytest.raises(ValueError, match="at least one pixel"):
        PixelBudget(0)


def _text_png() -> bytes:
    image = Image.new("RGB", (600, 120), "white")
    ImageDraw.Draw(image).text(
        (20, 30), "TOTAL 12.50", fill="black", font=ImageFont.load_default(size=40)
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_an_image_file_is_decoded_only_once_its_pixels_are_free() -> None:
    """An extract worker's image files wait for the pixels decoded before them (a pod had
    room for only so many 50 Mpx scans waiting for the OCR engine), then read as before."""
    data = _text_png()
    document = Document("f", "receipt.png", "image/png", functools.partial(io.BytesIO, data))
    with ThreadPoolExecutor(1) as pool:
        with DECODED.held(DECODED.total):  # every pixel taken, as by a large scan
            reading_it = pool.submit(reading.image_page, document)
            _until(lambda: DECODED.waiting == 1)
            assert not reading_it.done()
        page = reading_it.result(timeout=120)
    assert "12.50" in page.text
