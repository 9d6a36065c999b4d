"""CPU time of a page's text runs (pdf_child.text_runs) on pages of many short runs.

    .venv/bin/python bench/text_runs.py                  # 3,000 / 10,000 / 90,000 runs
    .venv/bin/python bench/text_runs.py --runs 20000 --bounded

Each page draws one-letter runs, each its own text object, in 2-point type (as
tests/core/test_pdf_runs.py's dense page). Prints, per page, the CPU seconds of text_runs
(each character read once, bytereview.pdf_runs) and, with --bounded (or for pages of at most
10,000 runs), of the reading it replaced: pdfium's text of each rect, rects x characters.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium

from bytereview import pdf_child
from bytereview.core.limits import MAX_PAGE_TEXT_CHARS

# Run as a script from anywhere: the repository root, for the tests' PDF builders.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.core.test_pdf_runs import bounded_runs
from tests.pdfs import placed_pdf

COLUMNS = 500


def page(runs: int) -> bytes:
    return placed_pdf(
        [(3 + (i % COLUMNS) * 1.112, 3 + (i // COLUMNS) * 2.8, "a") for i in range(runs)], size=2
    )


def cpu(work: Callable[..., Any], *args: Any) -> float:
    started = time.process_time()
    work(*args)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, action="append", help="runs on the page (repeat)")
    parser.add_argument("--bounded", action="store_true", help="time the old reading always")
    args = parser.parse_args()
    for runs in args.runs or [3_000, 10_000, 90_000]:
        data = page(runs)
        pdf = pdfium.PdfDocument(data)
        linear = cpu(pdf_child.text_runs, pdf, 0, MAX_PAGE_TEXT_CHARS)
        line = f"{runs:>7,} runs: text_runs {linear:6.2f} CPU-s"
        if args.bounded or runs <= 10_000:
            line += f", text of each rect {cpu(bounded_runs, data):6.2f} CPU-s"
        print(line, flush=True)
        pdf.close()


if __name__ == "__main__":
    main()
