"""Word spaces OCR's recognizer left out, put back from the ink of the text line.

rapidocr's recognizer (PP-OCR, CTC) reads a space only where words stand well apart: on
receipts set tight it reads `UNIHAKKAINTERNATIONALSDNBHD`, and users saw and exported
the glued text (the extraction scores, which ignore spacing, never showed it). The gap is
there in the image, though. CTC says in which of its output columns it read each
character; the columns map onto the line's crop, so each character's stretch of the crop
is known, and with it the blank (ink-free) run of pixel columns between two neighbours.

A space goes where that blank run is wide for the line (at least `MIN_BLANK` of the
crop's height) and, in monospaced print, the two characters' ink centres also stand
further apart than the line's pitch (`MIN_PITCH` times the median distance between
neighbours' centres). The column gaps alone overlap (4-7 columns between words, 2-4
inside one); the blank alone splits a monospaced `D.I.Y.`, whose narrow dots leave as much
blank beside them as a space would, while a space there moves the centres apart by a
whole cell. A line is taken as proportional when the blanks between its characters vary
less than their pitch does: there a narrow `I` after a space keeps the centres close, and
the blank alone decides. Thresholds fitted on the field scores of sroie-train
(docs/benchmarks.md, Offline extraction).

Never inside a number (`17.00`, `18/01/2018`, `4162-2318` stay as read: a monospaced `1`
leaves a wide blank, and the value rules read a number whole), before closing punctuation
(`SDN.`, `6,`, `(M)`, `No:`) or after an opening parenthesis: the receipts' ground truth has
(almost) no such space.
"""

from __future__ import annotations

import itertools
import unicodedata
from typing import Any

import numpy as np

# A space where the blank between two characters is at least this share of the line's
# crop height and (monospaced print) their ink centres at least MIN_PITCH times its pitch.
MIN_BLANK = 0.26
MIN_PITCH = 1.1
# Not after `(`, not before what closes or follows a word (`SDN.`, `6,`, `(M)`, `No:`).
_NO_SPACE_AFTER = frozenset("([")
_NO_SPACE_BEFORE = frozenset(".,;:)]")
# Inside a number, digits are joined by these (`17.00`, `18/01/2018`, `10:27`, `4162-2318`).
_NUMBER_JOINERS = frozenset(".,:/-")


def char_columns(indices: Any, blank: int = 0) -> list[tuple[int, int]]:
    """The output columns each character CTC decodes from `indices` (the best class per
    column) spans: (first, last) of each run of one class that is not `blank`, in the
    order `CTCLabelDecode` reads them (one character per run)."""
    idx = np.asarray(indices)
    if idx.size == 0:
        return []
    change = np.flatnonzero(np.diff(idx)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [idx.size])) - 1
    keep = idx[starts] != blank
    return list(zip(starts[keep].tolist(), ends[keep].tolist(), strict=True))


def ink_columns(crop: Any) -> Any:
    """Which pixel columns of the line's crop (BGR or grey) hold ink: Otsu's threshold,
    dark on light (a crop mostly dark is light text on a dark band, and is inverted)."""
    import cv2

    grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    _, ink = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    if ink.mean() > 0.5:
        ink = 1 - ink
    return ink.any(axis=0)


def _blank_runs(ink: Any) -> tuple[Any, Any]:
    """(starts, ends) of the runs of columns without ink, ends exclusive."""
    edges = np.diff(np.concatenate(([1], ink.astype(np.int8), [1])))
    return np.flatnonzero(edges == -1), np.flatnonzero(edges == 1)


def _widest_blank(starts: Any, ends: Any, left: int, right: int) -> tuple[int, int]:
    """(width, start) of the widest blank run within columns [left, right)."""
    lo = np.maximum(starts, left)
    hi = np.minimum(ends, right)
    widths = hi - lo
    if widths.size == 0 or widths.max() <= 0:
        return 0, (left + right) // 2
    best = int(widths.argmax())
    return int(widths[best]), int(lo[best])


def _may_space(before2: str, before: str, after: str) -> bool:
    """Whether a space may part `before` and `after` (`before2` precedes them)."""
    left = unicodedata.normalize("NFKC", before)
    right = unicodedata.normalize("NFKC", after)
    if left in _NO_SPACE_AFTER or right in _NO_SPACE_BEFORE:
        return False
    if right.isdigit():
        two = unicodedata.normalize("NFKC", before2)
        if left.isdigit() or (left in _NUMBER_JOINERS and two.isdigit()):
            return False
    return True


def word_spaces(
    text: str, columns: list[tuple[int, int]], ink: Any, column_px: float, height: int
) -> str:
    """`text` with a space put between the words its characters' ink sets apart.

    `columns[i]` is the (first, last) output column `text[i]` was read from, `ink` which
    pixel columns of the line's crop hold ink, `column_px` the crop's pixels per output
    column and `height` the crop's height. Text whose characters do not match the columns
    one to one is returned as it is."""
    width = int(ink.size)
    if len(columns) != len(text) or len(text) < 3 or width < 3:
        return text
    # Each character read, with the pixel columns CTC places it on; spaces read are kept.
    chars: list[tuple[int, int, int]] = []  # (index in text, first px, last px)
    for i, (first, last) in enumerate(columns):
        if text[i] != " ":
            x0 = min(int((first + 0.5) * column_px), width - 1)
            x1 = min(int((last + 0.5) * column_px), width - 1)
            chars.append((i, x0, x1))
    if len(chars) < 3:
        return text
    starts, ends = _blank_runs(ink)
    # Where one character's ink ends and the next one's begins: the middle of the widest
    # blank between where CTC read them (or halfway, when no blank parts them).
    blanks, bounds = [], [0]
    for (_, _, left), (_, right, _) in itertools.pairwise(chars):
        run, start = _widest_blank(starts, ends, left, max(right, left + 1))
        blanks.append(run)
        bounds.append(start + run // 2 if run else (left + right) // 2)
    bounds.append(width)
    centres = []
    for k, (_, x0, x1) in enumerate(chars):
        inked = np.flatnonzero(ink[bounds[k] : bounds[k + 1]])
        lo, hi = (bounds[k] + inked[0], bounds[k] + inked[-1]) if inked.size else (x0, x1)
        centres.append((lo + hi) / 2)
    steps = np.diff(centres)
    # Gaps that a read space already parts say nothing of the line's pitch.
    joined = [n for n in range(len(steps)) if chars[n + 1][0] == chars[n][0] + 1]
    if not joined:
        return text
    pitch = float(np.median(steps[joined]))
    # Monospaced print puts characters a steady pitch apart (the blanks vary with the
    # glyphs' widths); proportional print leaves a steady blank between them (the pitch
    # varies), where a blank as wide as MIN_BLANK is a space whatever the glyphs.
    gaps = np.array([blanks[n] for n in joined], dtype=float)
    steady_blanks = float(np.median(np.abs(gaps - np.median(gaps))))
    proportional = steady_blanks < float(np.median(np.abs(steps[joined] - pitch)))
    out = list(text)
    for n in reversed(joined):
        i, j = chars[n][0], chars[n + 1][0]
        if (
            blanks[n] >= MIN_BLANK * height
            and (proportional or steps[n] >= MIN_PITCH * pitch)
            and _may_space(text[i - 1] if i else "", text[i], text[j])
        ):
            out.insert(j, " ")
    return "".join(out)


def spaced(text: str, indices: Any, crop: Any, column_px: float) -> str:
    """`text` as CTC decoded it from `indices` (the best class per output column, class 0
    the blank) over the line's `crop`, `column_px` crop pixels per output column, with the
    word spaces the recognizer left out."""
    if len(text) < 3:
        return text
    return word_spaces(text, char_columns(indices), ink_columns(crop), column_px, crop.shape[0])
