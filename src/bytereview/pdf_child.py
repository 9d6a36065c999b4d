"""The child side of `bytereview.core.pdf_process`: one PDF, open in pdfium, answering calls.

Started as `python -m bytereview.pdf_child FD MEMORY_BYTES PARENT_PID`, it serves one
document after another over the connection FD, and dies with its parent. It imports only the
standard library, pypdfium2 and `bytereview.pdf_runs` (not `bytereview.core`, which takes a
second to import), so a child is ready in a fraction of a second. Calls are named operations
(below) with plain arguments, answered with plain values: nothing the parent sends makes the
child import anything else.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


def page_count(pdf: Any) -> int:
    return len(pdf)


def page_size(pdf: Any, index: int) -> tuple[float, float]:
    page = pdf[index]
    try:
        width, height = page.get_size()
        return float(width), float(height)
    finally:
        page.close()


class TooMuchText(Exception):
    """The page's text layer holds more characters than the caller reads (answered as the
    page being too costly: each character would cross to the parent with its box)."""


def _textpage(page: Any, max_chars: int) -> Any:
    """The page's text layer; TooMuchText when it holds more than `max_chars` characters,
    counted before any of them is turned into a Python object."""
    textpage = page.get_textpage()
    count = int(textpage.count_chars())
    if count > max_chars:
        textpage.close()
        raise TooMuchText(
            f"its text layer holds {count} characters; at most {max_chars} more of the "
            "document's text are read"
        )
    return textpage


def page_text(
    pdf: Any, index: int, min_chars: int, max_chars: int
) -> tuple[float, float, str | None, list[Any] | None]:
    """(width, height, text, each character's box (left, bottom, right, top) in points or
    None for a space) of a page; boxes are None when the text does not map onto pdfium's
    characters, and text is None when the layer has fewer than `min_chars` visible
    characters (a scan). TooMuchText past `max_chars` characters."""
    page = pdf[index]
    try:
        width, height = (float(v) for v in page.get_size())
        textpage = _textpage(page, max_chars)
        try:
            text = str(textpage.get_text_range())
            if len(text.strip()) < min_chars:
                return width, height, None, None
            if textpage.count_chars() != len(text):
                return width, height, text, None
            boxes = [
                None if ch.isspace() else tuple(textpage.get_charbox(i))
                for i, ch in enumerate(text)
            ]
            return width, height, text, boxes
        finally:
            textpage.close()
    finally:
        page.close()


def text_runs(pdf: Any, index: int, max_chars: int) -> list[tuple[float, float, float, float, str]]:
    """The page's text runs: (bottom, top, left, right, text), in the producer's order;
    TooMuchText past `max_chars` characters. Each character is read once (pdf_runs says
    how the runs' text is made, as pdfium's text of each run's rect)."""
    from bytereview import pdf_runs

    page = pdf[index]
    try:
        textpage = _textpage(page, max_chars)
    except BaseException:
        page.close()
        raise
    try:
        codes, boxes, ys = _characters(textpage)
        rects = [tuple(textpage.get_rect(i)) for i in range(textpage.count_rects())]
        if pdf_runs.worth_it(boxes, rects):
            return pdf_runs.text_runs(codes, boxes, ys, rects)
        # A page shaped against the grid: pdfium's text of each rect (the same text) is
        # the cheaper there.
        return _bounded_runs(textpage, rects)
    finally:
        textpage.close()
        page.close()


def _bounded_runs(
    textpage: Any, rects: list[tuple[float, float, float, float]]
) -> list[tuple[float, float, float, float, str]]:
    """The runs as pdfium's own text of each rect makes them (FPDFText_GetBoundedText:
    each call scans every character of the page)."""
    runs = []
    for left, bottom, right, top in rects:
        text = " ".join(str(textpage.get_text_bounded(left, bottom, right, top)).split())
        if text:
            runs.append((bottom, top, left, right, text))
    return runs


def _characters(textpage: Any) -> tuple[list[int], list[Any], list[float]]:
    """Each character's code point, box (left, bottom, right, top, normalized) and origin's
    y, from pdfium's calls with their out-parameters made once (pypdfium2's get_charbox
    makes four per character, and a page may hold 100,000)."""
    import ctypes

    import pypdfium2.raw as raw

    handle = textpage.raw
    left, right, bottom, top, x, y = (ctypes.c_double() for _ in range(6))
    box_args = (ctypes.byref(left), ctypes.byref(right), ctypes.byref(bottom), ctypes.byref(top))
    origin_args = (ctypes.byref(x), ctypes.byref(y))
    codes: list[int] = []
    boxes: list[Any] = []
    ys: list[float] = []
    for i in range(int(textpage.count_chars())):
        codes.append(int(raw.FPDFText_GetUnicode(handle, i)))
        if raw.FPDFText_GetCharBox(handle, i, *box_args):
            x0, x1, y0, y1 = left.value, right.value, bottom.value, top.value
            boxes.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        else:
            boxes.append((0.0, 0.0, 0.0, 0.0))  # no box: meets no rect
        raw.FPDFText_GetCharOrigin(handle, i, *origin_args)
        ys.append(y.value)
    return codes, boxes, ys


def render(pdf: Any, index: int, scale: float) -> tuple[str, int, int, bytes]:
    """The page drawn at `scale` (the caller bounds it: see bounded_scale) as raw pixels:
    (PIL mode, width, height, bytes)."""
    page = pdf[index]
    try:
        bitmap = page.render(scale=scale)
        try:
            image = bitmap.to_pil()
            return image.mode, image.width, image.height, image.tobytes()
        finally:
            bitmap.close()
    finally:
        page.close()


def bounded_scale(width_pt: float, height_pt: float, scale: float, max_pixels: int) -> float:
    """`scale`, lowered so that a page of that size draws to at most `max_pixels` pixels."""
    area = max(width_pt, 1.0) * max(height_pt, 1.0) * scale * scale
    if area > max_pixels:
        scale *= (max_pixels / area) ** 0.5
    return scale


OPERATIONS: dict[str, Callable[..., Any]] = {
    "page_count": page_count,
    "page_size": page_size,
    "page_text": page_text,
    "text_runs": text_runs,
    "render": render,
}


def cap_memory(extra: int) -> None:
    """Cap the address space at what the child maps now plus `extra` (Linux; elsewhere the
    time bound alone applies)."""
    try:
        import resource

        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (mapped + extra, mapped + extra))
    except (OSError, ValueError, ImportError):
        pass


def first_to_go() -> None:
    """Linux: when the pod (or machine) runs out of memory before this child reaches its own
    cap, the kernel ends this child, not the worker holding other users' work."""
    try:
        with open("/proc/self/oom_score_adj", "w") as adj:
            adj.write("1000")
    except OSError:
        pass


# <linux/prctl.h>: have the kernel send a signal when the parent dies.
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Linux: be killed when the parent dies. A worker killed (OOM, SIGKILL past its grace
    period) closes this child's socket, but a child busy in pdfium on a hostile page would
    only notice once the page is done, up to its time bound later, holding its memory and
    CPU in the pod meanwhile. SIGKILL, since pdfium's C code never lets a Python handler
    run. Elsewhere (no prctl) the closed socket alone ends the child."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    # The parent may have died before the signal was asked for: then this child was already
    # given to another parent and no signal will come. (The parent is the thread that
    # started the child, which pdf_process keeps alive as long as the worker.)
    if os.getppid() != parent:
        os._exit(1)


def serve(conn: Connection, memory_bytes: int) -> None:
    """Answer requests until the parent goes away: ("open", path) opens a document (and
    answers its page count), ("close",) closes it, and (operation, args) runs an operation
    on the open one. One child serves one document after another."""
    import pypdfium2 as pdfium

    first_to_go()
    cap_memory(memory_bytes)
    pdf: Any = None
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if request[0] == "open":
                pdf = pdfium.PdfDocument(request[1])
                conn.send(("ok", len(pdf)))
            elif request[0] == "close":
                if pdf is not None:
                    pdf.close()
                    pdf = None
                conn.send(("ok", None))
            else:
                name, args = request
                conn.send(("ok", OPERATIONS[name](pdf, *args)))
        except pdfium.PdfiumError as exc:
            conn.send(("unreadable", str(exc)))
        except TooMuchText as exc:
            conn.send(("costly", str(exc)))
        except MemoryError:
            conn.send(("memory", ""))
            return
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def main() -> None:
    fd, memory, parent = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    die_with_parent(parent)
    sock = socket.socket(fileno=fd)
    serve(Connection(sock.detach()), memory)


if __name__ == "__main__":
    main()
