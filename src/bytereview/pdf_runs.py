"""A page's text runs from its characters and pdfium's text rects, in one pass (pdf_child).

pdfium's text of a rect (FPDFText_GetBoundedText) scans every character of the page for
those whose box meets the rect: asked once per rect, that was rects x characters, and a
dense page (tens of thousands of short runs, a 1 KB PDF) spent the child's whole CPU bound
on it and failed to read. Here each character's box is put once in a grid of cells about a
character's size, and each rect looks only at the characters of the cells it covers: as
many looks as characters on a page whose runs do not overlap.

The text is pdfium's own, after whitespace is folded, for every page, overlapping runs
included (pdfium's CPDF_TextPage::GetTextByRect, reproduced in `_bounded_text`):
- a character belongs to a rect when its box and the rect share an area (touching edges do
  not count), whichever rect it was counted in (text drawn twice over itself, a line whose
  descenders reach into the next: each rect holds the other's characters too, as before);
- between two characters of the rect, the characters outside it make a space when the
  first of them is a space, a line break when any is not (unless the character after the
  break is on the line of the previous break: then nothing, as pdfium does);
- a code point is kept as pdfium's UTF-16 answer decoded ("ignore") keeps it: a lone
  surrogate is dropped, a pair makes one character.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Box = tuple[float, float, float, float]  # left, bottom, right, top
Run = tuple[float, float, float, float, str]  # bottom, top, left, right, text

_SPACE = 0x20
# A character's box spanning more cells than this is not put in the grid but looked at by
# every rect (a page-sized watermark glyph would otherwise fill every cell).
_WIDE_CELLS = 16


# What one look of the grid (a cell or a wide character, in Python) costs against pdfium's
# look at one character for one rect (in C): measured ~0.2 us against ~15 ns.
_LOOK_COST = 15
# Rects x characters under which pdfium's text of each rect costs at most a few
# milliseconds: either reading is cheap there, and the grid's is kept.
_SMALL_PAGE = 100_000


def worth_it(boxes: Sequence[Box], rects: Sequence[Box]) -> bool:
    """Whether the grid reads the page, rather than pdfium's own text of each rect (rects x
    characters, in C): on every small page, and on larger ones where it is the cheaper (real
    pages: a few cells a rect); not on a page built against it, with thousands of rects each
    over many occupied cells, or thousands of glyphs larger than a cell that every rect
    must look at."""
    pdfium_looks = len(rects) * len(boxes)
    if pdfium_looks <= _SMALL_PAGE:
        return True
    return _Grid(boxes, rects).looks(rects) * _LOOK_COST <= pdfium_looks


def text_runs(
    codes: Sequence[int], boxes: Sequence[Box], ys: Sequence[float], rects: Sequence[Box]
) -> list[Run]:
    """The runs (bottom, top, left, right, text) of pdfium's `rects`, in their order, with
    the text pdfium gives each rect, whitespace folded; rects without text are left out.
    `codes`, `boxes` (normalized) and `ys` (the origin's) are the page's characters."""
    grid = _Grid(boxes, rects)
    non_spaces = [0]
    for code in codes:
        non_spaces.append(non_spaces[-1] + (code != _SPACE))
    runs: list[Run] = []
    for left, bottom, right, top in rects:
        inside = grid.inside(left, bottom, right, top)
        text = " ".join(_bounded_text(inside, codes, ys, non_spaces).split())
        if text:
            runs.append((bottom, top, left, right, text))
    return runs


def _bounded_text(
    inside: list[int], codes: Sequence[int], ys: Sequence[float], non_spaces: list[int]
) -> str:
    """pdfium's text of the characters `inside` a rect (ascending), with what the characters
    between them add (GetTextByPredicate's state, jumped over each gap at once)."""
    out: list[str] = []
    line_y = 0.0  # pdfium's `posy`: the y of the last line break considered
    previous = -1
    after_break = False  # pdfium's IsAddLineFeed
    surrogates = False
    for index in inside:
        contains_previous = index == previous + 1 and previous >= 0  # IsContainPreChar
        if index > previous + 1:
            first = previous + 1
            if previous >= 0 and codes[first] == _SPACE:
                out.append(" ")
                after_break = non_spaces[index] - non_spaces[first + 1] > 0
            else:
                after_break = after_break or non_spaces[index] - non_spaces[first] > 0
        if abs(line_y - ys[index]) > 0 and not contains_previous and after_break:
            line_y = ys[index]
            if out:
                out.append("\n")
        after_break = False
        code = codes[index]
        if 0 < code <= 0x10FFFF:
            out.append(chr(code))
            surrogates = surrogates or 0xD800 <= code <= 0xDFFF
        previous = index
    text = "".join(out)
    if surrogates:
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "ignore")
    return text


class _Grid:
    """The characters' boxes by cell, over the area the rects cover."""

    def __init__(self, boxes: Sequence[Box], rects: Sequence[Box]) -> None:
        self._boxes = boxes
        self._cells: dict[tuple[int, int], list[int]] = {}
        self._wide: list[int] = []
        self._seen = [-1] * len(boxes)
        self._asked = 0
        if not rects:
            self._x0 = self._y0 = 0.0
            self._size = 1.0
            self._columns = self._rows = 1
            return
        self._x0 = min(r[0] for r in rects)
        self._y0 = min(r[1] for r in rects)
        x1 = max(r[2] for r in rects)
        y1 = max(r[3] for r in rects)
        heights = sorted(b[3] - b[1] for b in boxes if b[3] > b[1] and b[2] > b[0])
        size = heights[len(heights) // 2] if heights else 1.0
        # At most about four cells a character: tiny characters spread over a huge area
        # must not make a grid bigger than the page's text.
        area = max(x1 - self._x0, 1e-6) * max(y1 - self._y0, 1e-6)
        size = max(size, math.sqrt(area / (4 * len(boxes) + 1024)), 1e-6)
        self._size = size
        self._columns = int((x1 - self._x0) / size) + 1
        self._rows = int((y1 - self._y0) / size) + 1
        for index, (left, bottom, right, top) in enumerate(boxes):
            # An empty box meets no rect (pdfium: an intersection must have an area).
            if not (left < right and bottom < top) or right <= self._x0 or left >= x1:
                continue
            if top <= self._y0 or bottom >= y1:
                continue
            c0, c1, r0, r1 = self._span(left, bottom, right, top)
            if (c1 - c0 + 1) * (r1 - r0 + 1) > _WIDE_CELLS:
                self._wide.append(index)
                continue
            for column in range(c0, c1 + 1):
                for row in range(r0, r1 + 1):
                    self._cells.setdefault((column, row), []).append(index)

    def _span(
        self, left: float, bottom: float, right: float, top: float
    ) -> tuple[int, int, int, int]:
        """The cells (first and last column, first and last row) a box covers, in the grid."""

        def clamp(value: float, last: int) -> int:
            return min(max(int(value), 0), last)

        return (
            clamp((left - self._x0) / self._size, self._columns - 1),
            clamp((right - self._x0) / self._size, self._columns - 1),
            clamp((bottom - self._y0) / self._size, self._rows - 1),
            clamp((top - self._y0) / self._size, self._rows - 1),
        )

    def looks(self, rects: Sequence[Box]) -> int:
        """How many cells and wide characters reading `rects` looks at, all told."""
        occupied, wide = len(self._cells), len(self._wide)
        total = 0
        for left, bottom, right, top in rects:
            c0, c1, r0, r1 = self._span(left, bottom, right, top)
            total += min((c1 - c0 + 1) * (r1 - r0 + 1), occupied) + wide
        return total

    def inside(self, left: float, bottom: float, right: float, top: float) -> list[int]:
        """The characters whose box shares an area with the rect, ascending."""
        self._asked += 1
        stamp, seen, boxes = self._asked, self._seen, self._boxes
        found: list[int] = []
        c0, c1, r0, r1 = self._span(left, bottom, right, top)
        candidates = [self._wide]
        if (c1 - c0 + 1) * (r1 - r0 + 1) > len(self._cells):
            # A rect over more cells than hold a character (a page-wide line on a sparse
            # page): the occupied cells are fewer to look at.
            for (column, row), held in self._cells.items():
                if c0 <= column <= c1 and r0 <= row <= r1:
                    candidates.append(held)
        else:
            for column in range(c0, c1 + 1):
                for row in range(r0, r1 + 1):
                    found_in = self._cells.get((column, row))
                    if found_in is not None:
                        candidates.append(found_in)
        for cell in candidates:
            for index in cell:
                if seen[index] == stamp:
                    continue
                seen[index] = stamp
                b = boxes[index]
                if max(left, b[0]) < min(right, b[2]) and max(bottom, b[1]) < min(top, b[3]):
                    found.append(index)
        found.sort()
        return found
