"""OCR of one image stage by stage, sharing the engine a model run at a time, within a time budget.

rapidocr's `RapidOCR.__call__` reads an image in one uninterruptible call. Its input is
bounded (2,000 px, 1,000 text boxes) but recognising what those boxes hold is not: a page of
dense small print took minutes of CPU. So the same stages run here, with the same code and
settings (what a normal page reads as is unchanged, byte for byte, but for the word spaces
the recognizer left out, put back from each line's ink: spacing.py), and:
- the engine is taken per model run (detection, each batch of angle classification and of
  recognition; a batch of very wide boxes box by box), in turn (`TurnLock`), so other
  pages are read in between;
- past `seconds` of the page's own CPU time (not its waiting for the engine, nor for a
  core), checked between runs, `OcrTooCostly` is raised (the spacing of a batch's lines is
  the page's own work, counted with it).

Written against rapidocr_onnxruntime 1.4 (`main.py`, `ch_ppocr_*`): a change there is caught
by tests/services/extract/test_ocr_run.py, which compares both on generated pages.
"""

from __future__ import annotations

import collections
import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from services.extract.reading.spacing import spaced

# A recognition batch padded wider than this many times its height (3,072 px; receipts'
# lines reach about 20) is run box by box, so that the engine is never held for long.
WIDE_RATIO = 64.0


class OcrTooCostly(Exception):
    """The page took longer than its budget."""


class OcrUnreadableShape(Exception):
    """The image is too long and narrow for OCR: scaled to the engine's input (its long side
    to 2,000 px, each side to a multiple of 32), its short side is nothing. rapidocr raises
    a bare ResizeImgError there (any image past ~125:1 with a long side over 2,000 px), an
    error no reader expected: the task was retried to exhaustion as an internal error, and a
    folder's combined task with it."""


class TurnLock:
    """A lock handed to its waiters in the order they asked (threading.Lock is not: a thread
    releasing it and asking again at once usually gets it back, so a page read batch by batch
    would still hold the engine from the others)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: collections.deque[threading.Lock] = collections.deque()

    def acquire(self) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        turn.acquire()  # released by `release`, which hands the lock over held

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._held = False

    def locked(self) -> bool:
        return self._held

    def waiting(self) -> int:
        """How many threads wait for their turn."""
        return len(self._waiters)

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class _Clock:
    """The page's own CPU time: its thread's outside the engine, and the process's during
    its turns with the engine (whose threads work for one page at a time). CPU time, not
    wall time: a process that is starved of CPU (a throttled pod, a busy machine) reads
    slower, and a page failed for that would fail for good, where the bound is meant for
    pages that cost too much to read anywhere. Waiting for the engine costs none."""

    def __init__(self, lock: TurnLock, seconds: Callable[[], float]) -> None:
        self._lock = lock
        self._seconds = seconds
        self._thread_start = time.thread_time()
        self._thread_in_turns = 0.0
        self._process_in_turns = 0.0

    @contextlib.contextmanager
    def engine(self) -> Iterator[None]:
        with self._lock:
            thread, process = time.thread_time(), time.process_time()
            try:
                yield
            finally:
                self._thread_in_turns += time.thread_time() - thread
                self._process_in_turns += time.process_time() - process

    def spent(self) -> float:
        outside = time.thread_time() - self._thread_start - self._thread_in_turns
        return outside + self._process_in_turns

    def check(self) -> None:
        seconds = self._seconds()
        if self.spent() > seconds:
            raise OcrTooCostly(f"took more than {seconds:g} CPU-seconds")


def read(
    engine: Any,
    image: Any,
    lock: TurnLock,
    seconds: Callable[[], float],
    charge: Callable[[float], None] | None = None,
) -> list[list[Any]] | None:
    """What `engine(image)[0]` returns: [[box points, text, score], ...] or None.

    `seconds()` is the budget, asked at each check; `charge` is told the CPU seconds the
    page took when it ends, read or not."""
    clock = _Clock(lock, seconds)
    try:
        return _read(engine, image, clock)
    finally:
        if charge is not None:
            charge(clock.spent())


def _read(engine: Any, image: Any, clock: _Clock) -> list[list[Any]] | None:
    from rapidocr_onnxruntime.utils.process_img import (  # type: ignore[import-untyped]
        ResizeImgError,
    )

    img = engine.load_img(image)
    raw_h, raw_w = img.shape[:2]
    try:
        img, ratio_h, ratio_w = engine.preprocess(img)
    except ResizeImgError as exc:
        raise OcrUnreadableShape(f"{raw_w} x {raw_h} pixels") from exc
    op_record: dict[str, Any] = {"preprocess": {"ratio_h": ratio_h, "ratio_w": ratio_w}}
    img, op_record = engine.maybe_add_letterbox(img, op_record)
    dt_boxes = _detect(engine, img, clock)
    if dt_boxes is None:
        return None
    clock.check()
    crops = engine.get_crop_img_list(img, dt_boxes)
    crops = _classify(engine, crops, clock)
    texts = _recognise(engine, crops, clock)
    origin = engine._get_origin_points(dt_boxes, op_record, raw_h, raw_w)
    kept = [
        [box.tolist(), *text]
        for box, text in zip(origin, texts, strict=True)
        if float(text[1]) >= engine.text_score
    ]
    return kept or None


def _detect(engine: Any, img: Any, clock: _Clock) -> Any:
    """`RapidOCR.auto_text_det` (`TextDetector.__call__`), the engine held for the model only."""
    det = engine.text_det
    prepro = det.get_preprocess(max(img.shape[0], img.shape[1]))(img)
    if prepro is None:
        return None
    with clock.engine():
        preds = det.infer(prepro)[0]
    boxes, _ = det.postprocess_op(preds, (img.shape[0], img.shape[1]))
    boxes = det.filter_tag_det_res(boxes, (img.shape[0], img.shape[1]))
    if boxes is None or len(boxes) < 1:
        return None
    return engine.sorted_boxes(boxes)


def _classify(engine: Any, crops: list[Any], clock: _Clock) -> list[Any]:
    """`TextClassifier.__call__`: boxes read upside down turned, a batch at a time."""
    import cv2
    import numpy as np

    cls = engine.text_cls
    crops = list(crops)
    indices = np.argsort(np.array([c.shape[1] / float(c.shape[0]) for c in crops]))
    for begin in range(0, len(crops), cls.cls_batch_num):
        end = min(len(crops), begin + cls.cls_batch_num)
        batch = np.concatenate(
            [cls.resize_norm_img(crops[indices[i]])[np.newaxis, :] for i in range(begin, end)]
        ).astype(np.float32)
        clock.check()
        with clock.engine():
            prob = cls.infer(batch)[0]
        for n, (label, score) in enumerate(cls.postprocess_op(prob)):
            if "180" in label and score > cls.cls_thresh:
                crops[indices[begin + n]] = cv2.rotate(crops[indices[begin + n]], 1)
    return crops


def _recognise(engine: Any, crops: list[Any], clock: _Clock) -> list[Any]:
    """`TextRecognizer.__call__` (without word boxes): (text, score) per box, a batch at a
    time; the batches are the engine's (a batch is padded to its widest box, which changes
    what is read). The word spaces the recognizer left out are put back (spacing.py)."""
    import numpy as np

    rec = engine.text_rec
    indices = np.argsort(np.array([c.shape[1] / float(c.shape[0]) for c in crops]))
    texts: list[Any] = [("", 0.0)] * len(crops)
    _, height, width = rec.rec_image_shape[:3]
    for begin in range(0, len(crops), rec.rec_batch_num):
        end = min(len(crops), begin + rec.rec_batch_num)
        max_wh_ratio = width / height
        ratios = []
        for i in range(begin, end):
            h, w = crops[indices[i]].shape[0:2]
            ratios.append(w * 1.0 / h)
            max_wh_ratio = max(max_wh_ratio, ratios[-1])
        batch = np.concatenate(
            [
                rec.resize_norm_img(crops[indices[i]], max_wh_ratio)[np.newaxis, :]
                for i in range(begin, end)
            ]
        ).astype(np.float32)
        # A batch of wide boxes (a line of small print across the page) costs seconds:
        # its boxes are recognised one at a time, each padded as in the batch (the same
        # figures: a box's result does not depend on the others in its batch).
        parts = (
            [batch] if max_wh_ratio <= WIDE_RATIO else [batch[n : n + 1] for n in range(len(batch))]
        )
        outputs = []
        for part in parts:
            clock.check()
            with clock.engine():
                outputs.append(rec.session(part)[0])
        preds = outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
        decoded = rec.postprocess_op(preds, False, wh_ratio_list=ratios, max_wh_ratio=max_wh_ratio)
        best = preds.argmax(axis=2)
        for n, (text, score) in enumerate(decoded):
            crop = crops[indices[begin + n]]
            px = _column_px(crop, height, max_wh_ratio, best.shape[1])
            texts[indices[begin + n]] = (spaced(text, best[n], crop, px), score)
    return texts


def _column_px(crop: Any, height: int, max_wh_ratio: float, columns: int) -> float:
    """Pixels of `crop` per output column of the recognizer: `resize_norm_img` scales the
    crop to `height` rows and pads it to the batch's width, which the model reads in
    `columns` columns."""
    h, w = crop.shape[:2]
    padded = int(height * max_wh_ratio)
    resized = min(padded, math.ceil(height * w / h))
    return float(padded / columns * w / max(resized, 1))
