"""OCR of a page within its time, sharing the engine (services/extract/reading/ocr_run.py): a normal
page reads exactly as rapidocr's own call reads it (but for the word spaces put back); a page of dense small print fails its file
with a reason, and other pages are read while it is."""

from __future__ import annotations

import functools
import io
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFont

from services.extract.base import Document, ExtractionError
from services.extract.reading import pages as reading
from services.extract.reading.ocr import ocr_engine
from services.extract.reading.ocr_run import OcrTooCostly, TurnLock, read
from tests.services.extract.test_offline import RECEIPT, receipt_png


def lines_image(lines: list[str], width: int = 1000, size: int = 36) -> Any:
    font = ImageFont.load_default(size=size)
    image = Image.new("RGB", (width, 80 + int(size * 1.7) * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((40, 40 + int(size * 1.7) * i), line, fill="black", font=font)
    return image


def dense_image() -> Any:
    """The lead's measurement: 6000 px square, a line of 120 words every 50 px (192 CPU-s
    of OCR before; about 2,000 boxes' worth of text for the engine's 2000 px)."""
    image = Image.new("RGB", (6000, 6000), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)
    for y in range(0, 6000, 50):
        words = " ".join(f"W{(y * 7 + i) % 997}" for i in range(120))
        draw.text((5, y), words, fill="black", font=font)
    return image


def png(image: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def receipts() -> list[Any]:
    """Pages that take each of the engine's paths: a receipt, many short boxes in several
    batches, text upside down (turned by the angle model), one
    wide line (letterboxed), a page over 2000 px (scaled down), grey, and a blank page."""
    items = lines_image([f"ITEM {i} x{i} {i * 1.5:.2f}" for i in range(12)] + ["RM", "7.40"])
    return [
        Image.open(io.BytesIO(receipt_png(RECEIPT))),
        items,
        lines_image(RECEIPT[:6]).rotate(180),
        lines_image(["TOTAL AMOUNT INCLUDING GST 60.31 THANK YOU PLEASE COME AGAIN"], 1600).crop(
            (0, 20, 1600, 110)
        ),
        lines_image(RECEIPT, 2400, 60),
        lines_image(RECEIPT[:4]).convert("L"),
        Image.new("RGB", (300, 300), "white"),
    ]


def spaces_added(ours: str, theirs: str) -> bool:
    """Whether `ours` is `theirs` with spaces put in (spacing.py), and nothing else changed."""
    k = 0
    for ch in ours:
        if k < len(theirs) and ch == theirs[k]:
            k += 1
        elif ch != " ":
            return False
    return k == len(theirs)


def same_reading(ours: Any, theirs: Any) -> bool:
    """The engine's boxes, texts (but for the word spaces put back) and scores."""
    if ours is None or theirs is None:
        return ours is theirs
    return len(ours) == len(theirs) and all(
        a[0] == b[0] and a[2] == b[2] and spaces_added(a[1], b[1])
        for a, b in zip(ours, theirs, strict=True)
    )


def test_spaces_added_tells_a_space_from_any_other_change() -> None:
    assert spaces_added("SDN BHD", "SDNBHD")
    assert spaces_added("SDN BHD", "SDN BHD")
    assert not spaces_added("SDN BHO", "SDNBHD")
    assert not spaces_added("SDNBHD", "SDN BHD")  # a space the engine read is kept
    assert not spaces_added("SDN BH", "SDNBHD")


def test_pages_read_exactly_as_the_engine_reads_them() -> None:
    engine = ocr_engine()
    for image in receipts():
        ours = read(engine, image, TurnLock(), lambda: 60.0)
        theirs, _ = engine(image)
        assert same_reading(ours, theirs)
    # The set above reads text (a comparison of Nones proves nothing).
    assert "ACMETRADING" in reading.ocr_page(receipt_png(RECEIPT)).text.replace(" ", "")


class CountedLock(TurnLock):
    def __init__(self) -> None:
        super().__init__()
        self.turns = 0

    def acquire(self) -> None:
        super().acquire()
        self.turns += 1


def test_lines_across_the_page_are_recognised_a_box_at_a_time_as_the_engine_reads_them() -> None:
    # Three lines of small print across 2000 px: boxes about 80 times as wide as high.
    lines = [" ".join(f"ITEM{i}-{j} 1.{j}0" for j in range(11)) for i in range(3)]
    image = lines_image(lines, 2000, 22)
    engine = ocr_engine()
    lock = CountedLock()
    ours = read(engine, image, lock, lambda: 60.0)
    assert same_reading(ours, engine(image)[0])
    assert ours is not None
    assert len(ours) == 3
    # Detection, one batch of angles, and each of the three boxes on its own.
    assert lock.turns == 1 + 1 + 3


def dense_document() -> Document:
    data = png(dense_image())
    return Document("f", "dense.png", "image/png", functools.partial(io.BytesIO, data))


async def test_a_page_of_dense_print_fails_its_file_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The limit made small: its own time is past it after detection, the first model run.
    monkeypatch.setattr(reading, "OCR_PAGE_SECONDS", 0.01)
    with pytest.raises(ExtractionError) as caught:
        await reading.document_pages(dense_document())
    assert str(caught.value) == "dense.png: page 1 has more text than OCR reads in 0.01 CPU-seconds"
    assert not caught.value.retryable
    # The next page of the process reads as before.
    monkeypatch.setattr(reading, "OCR_PAGE_SECONDS", 60.0)
    assert "27/03/2018" in reading.ocr_page(receipt_png(RECEIPT)).text


class RecordedLock(TurnLock):
    """The worker's lock, noting whose turn each was; the first turn is kept until another
    thread waits for the engine (so that one is there before the dense page's next run)."""

    def __init__(self) -> None:
        super().__init__()
        self.turns: list[str] = []
        self.first = threading.Event()

    def acquire(self) -> None:
        super().acquire()
        self.turns.append(threading.current_thread().name)
        if len(self.turns) == 1:
            self.first.set()
            deadline = time.monotonic() + 60
            while not self.waiting() and time.monotonic() < deadline:
                time.sleep(0.01)


def test_other_pages_are_read_while_a_dense_one_is(monkeypatch: pytest.MonkeyPatch) -> None:
    lock = RecordedLock()
    monkeypatch.setattr(reading, "_OCR_LOCK", lock)
    image = dense_image()
    outcome: list[BaseException] = []

    def dense() -> None:
        try:
            reading.ocr_page(image)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=dense, name="dense")
    thread.start()
    try:
        assert lock.first.wait(60)
        small = reading.ocr_page(receipt_png(RECEIPT))
    finally:
        # The dense page, given no more time, stops at its next check.
        monkeypatch.setattr(reading, "OCR_PAGE_SECONDS", 0.0)
        thread.join(120)
    assert "27/03/2018" in small.text
    assert [type(e) for e in outcome] == [OcrTooCostly]
    mine = [n for n, name in enumerate(lock.turns) if name != "dense"]
    # The small page had all its runs (detection, angles, recognition) between the dense
    # page's, its detection next after the dense page's: the engine was taken per run, in
    # turn, not for the whole page.
    assert len(mine) >= 3
    assert mine[0] == 1
    assert "dense" in lock.turns[mine[-1] + 1 :]


def test_the_engine_is_handed_over_in_the_order_it_was_asked_for() -> None:
    lock = TurnLock()
    order: list[str] = []
    lock.acquire()

    def take(name: str) -> None:
        with lock:
            order.append(name)

    first = threading.Thread(target=take, args=("first",))
    first.start()
    while lock.waiting() < 1:
        time.sleep(0.001)
    second = threading.Thread(target=take, args=("second",))
    second.start()
    while lock.waiting() < 2:
        time.sleep(0.001)
    lock.release()
    # Released and asked for again at once: the waiters go first.
    lock.acquire()
    order.append("again")
    lock.release()
    first.join(10)
    second.join(10)
    assert order == ["first", "second", "again"]
    assert not lock.locked()


# A child process reads a page once to learn its CPU cost, then reads it again with a budget
# of twice that, and stops itself (SIGSTOP) in the middle of the read, as a throttled pod or
# a busy machine would leave it unscheduled, for longer than the whole budget.
STARVED_CHILD = """
import os, signal, sys, time
from services.extract.reading import pages as reading
from services.extract.reading.ocr import ocr_engine
from tests.services.extract.test_ocr_run import lines_image

image = lines_image(["TOTAL RM 7.40"])
reading.ocr_page(image)  # the models' first runs
started = time.process_time()
reading.ocr_page(image)
budget = 2 * (time.process_time() - started) + 0.2
reading.OCR_PAGE_SECONDS = budget
detector = ocr_engine().text_det
real = detector.infer

def stopping(*args):  # in detection, the first model run: the budget is checked after it
    detector.infer = real
    print(budget, flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)
    return real(*args)

detector.infer = stopping
print(reading.ocr_page(image).text, flush=True)
"""


def test_a_page_starved_of_cpu_is_read_all_the_same() -> None:
    """The bound is the page's own CPU time: wall time it spent unscheduled is not its cost."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    child = subprocess.Popen(
        [sys.executable, "-c", STARVED_CHILD],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        budget = float(child.stdout.readline())
        deadline = time.monotonic() + 60
        while _state(child.pid) != "T":  # stopped, in the middle of the read
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(budget + 1)
        os.kill(child.pid, signal.SIGCONT)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert "7.40" in out


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]
