"""A page of a document as a PNG, for showing the source beside its values.

PDF pages are drawn by pdfium in a child process, within time and memory bounds
(core/pdf_process.py); images are decoded by
Pillow and scaled, so formats browsers cannot show (TIFF) still show, and every answer is
a PNG whose pixel size is known (a later piece draws evidence boxes on it).
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from bytereview.core import FailedPrecondition, InvalidArgument, NotFound, Unavailable, tiff_ifds
from bytereview.core.image_costs import decoding_problem
from bytereview.core.limits import MAX_IMAGE_PIXELS, MAX_TIFF_PAGE_VALUES
from bytereview.core.pdf_process import (
    PdfBounds,
    PdfProcess,
    PdfTooCostly,
    PdfUnreadable,
    SpoolFull,
)
from bytereview.core.pixel_budget import DECODED
from bytereview.core.reasons import reason_of
from bytereview.pdf_child import bounded_scale
from services.ingest.local_copies import LocalCopies
from services.ingest.sniff import BMP, GIF, JPEG, PDF, PNG, TIFF, WEBP

if TYPE_CHECKING:
    from PIL.Image import Image

IMAGES = frozenset({PNG, JPEG, GIF, TIFF, WEBP, BMP})
# What every drawn page is sent as.
PNG_TYPE = "image/png"
DEFAULT_WIDTH = 1200
MIN_WIDTH = 100
MAX_WIDTH = 2400
# A very tall page at full width would be a huge bitmap: the pixel count is bounded too.
MAX_PIXELS = 12_000_000
# Pages of a multi-page TIFF shown (a fax or scan bundle; more are left unshown).
MAX_IMAGE_PAGES = 1000
# Numbers the TIFF pages up to the one drawn may list together (each page's are bounded by
# MAX_TIFF_PAGE_VALUES): Pillow parses every page before it, ~1 s per million.
PAGES_VALUES = 16 * MAX_TIFF_PAGE_VALUES
# Time and memory one pdfium call may take (core/pdf_process.py).
PDF_BOUNDS = PdfBounds()


@dataclass(frozen=True, slots=True)
class RenderedPage:
    png: bytes
    width: int
    height: int
    page_count: int


def check_request(page: int, width: int) -> tuple[int, int]:
    """(page, width) with defaults applied; InvalidArgument when out of range."""
    if page < 0:
        raise InvalidArgument("page must be 1 or more")
    if width and not MIN_WIDTH <= width <= MAX_WIDTH:
        raise InvalidArgument(f"width must be between {MIN_WIDTH} and {MAX_WIDTH} pixels")
    return page or 1, width or DEFAULT_WIDTH


def _bounded_scale(width_pt: float, height_pt: float, width: int) -> float:
    """The scale that draws the page `width` pixels wide, within MAX_PIXELS."""
    return bounded_scale(width_pt, height_pt, width / max(width_pt, 1.0), MAX_PIXELS)


def _past_end(page: int, count: int) -> NotFound:
    # NOT_FOUND (404), as for a file that is not there: the request is well formed, and
    # which pages exist depends on the document (x-page-count says how many there are).
    return NotFound(f"page {page} is past the end: the document has {count} page(s)")


class _Refusals:
    """Pages that ran past the PDF bounds, and why, by storage key and page: asked again (a
    viewer retrying, or someone hammering a hostile file), they are refused at once, not
    after holding a PDF child for its whole time bound again. A file's bytes never change
    under its key, so neither does the verdict. Bounded: the oldest go first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._reasons: OrderedDict[tuple[str, int], str] = OrderedDict()

    def get(self, key: str, page: int) -> str | None:
        with self._lock:
            return self._reasons.get((key, page))

    def add(self, key: str, page: int, reason: str) -> None:
        with self._lock:
            self._reasons[(key, page)] = reason
            while len(self._reasons) > self._size:
                self._reasons.popitem(last=False)


REFUSED_PAGES = _Refusals(1024)


def draw_pdf_page(copies: LocalCopies, key: str, page: int, width: int) -> tuple[Image, int]:
    """The page as a Pillow image, and the document's page count. Blocking. pdfium draws in
    a child process (core/pdf_process.py), so a page that would take it minutes or
    gigabytes is refused without holding up anything else of the process. It reads the
    PDF's local copy (services/ingest/local_copies.py), downloaded once for many pages."""
    from PIL import Image as PILImage

    if (refused := REFUSED_PAGES.get(key, page)) is not None:
        raise FailedPrecondition(refused)
    try:
        with PdfProcess(local_copy=copies.copy(key, "the PDF"), bounds=PDF_BOUNDS) as pdf:
            count = pdf.page_count
            if page > count:
                raise _past_end(page, count)
            width_pt, height_pt = pdf.call("page_size", page - 1)
            scale = _bounded_scale(width_pt, height_pt, width)
            mode, w, h, pixels = pdf.call("render", page - 1, scale)
    except PdfUnreadable as exc:
        raise FailedPrecondition(f"the PDF cannot be read ({exc})") from exc
    except PdfTooCostly as exc:
        reason = f"the page cannot be drawn: {exc}"
        REFUSED_PAGES.add(key, page, reason)
        raise FailedPrecondition(reason) from exc
    except SpoolFull as exc:
        raise _disk_full(exc) from exc
    return PILImage.frombytes(mode, (w, h), pixels), count


def _disk_full(exc: SpoolFull) -> FailedPrecondition | Unavailable:
    """A file larger than the temporary disk is never drawn here; a disk full of other
    copies is the server's trouble, and maybe only for a while: not refused."""
    if exc.never_fits:
        return FailedPrecondition(f"the page cannot be drawn: {exc}")
    return Unavailable(f"the page cannot be drawn now: {exc}")


def pdf_head(key: str, page: int, page_count: int) -> int:
    """What a draw of the PDF's page says before drawing (a page known refused, a page past
    the end) and the document's page count, without starting a PDF child (a REST HEAD,
    core.head_only). The count is the file's analysis's: pdfium's own on the same bytes, as a
    draw counts them. 0 (unknown: a file analysed before counts were kept) checks nothing."""
    if (refused := REFUSED_PAGES.get(key, page)) is not None:
        raise FailedPrecondition(refused)
    if page_count and page > page_count:
        raise _past_end(page, page_count)
    return page_count


def image_head(copies: LocalCopies, key: str, page: int) -> int:
    """The image's page count, after every check of `draw_image` but the drawing (its
    structure read, the page found, nothing decoded): a REST HEAD (core.head_only). Blocking.
    The analysis's count is no use here: it says 1 for every image, a TIFF's pages included."""
    try:
        with copies.copy(key, "the image") as path, open(path, "rb") as data:
            if problem := decoding_problem(data):
                raise FailedPrecondition(f"the image cannot be drawn: {problem}")
            with _pillow_errors():
                return _open_frame(data, page)[1]
    except SpoolFull as exc:
        raise _disk_full(exc) from exc


def draw_image(copies: LocalCopies, key: str, page: int, width: int) -> tuple[Image, int]:
    """A frame of an image (a TIFF may hold several pages), scaled down to `width`."""
    # Decoded from a local copy (services/ingest/local_copies.py): Pillow reads a compressed
    # TIFF through libtiff from a file, but from a stream without one (a GCS object) it
    # reads the whole file first (up to the 2 GiB upload limit) to decode one page.
    try:
        with copies.copy(key, "the image") as path, open(path, "rb") as data:
            # What Pillow bounds not: scans, chunks, what it reads whole (core/image_costs.py).
            if problem := decoding_problem(data):
                raise FailedPrecondition(f"the image cannot be drawn: {problem}")
            return _draw_frame(data, page, width)
    except SpoolFull as exc:
        raise _disk_full(exc) from exc


def _draw_frame(data: IO[bytes], page: int, width: int) -> tuple[Image, int]:
    from PIL import Image as PILImage

    with _pillow_errors():
        image, count = _open_frame(data, page)
        scale = min(1.0, _bounded_scale(image.width, image.height, width))
        # Its pixels held while it is decoded and scaled (core/pixel_budget.py): a PNG is
        # decoded whole even for a thumbnail, and as many pages are drawn at once as asked.
        with DECODED.held(image.width * image.height):
            # In place and before any conversion: JPEGs decode at a reduced size, and the
            # full-size pixels of a large photo are never converted.
            image.thumbnail(
                (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                PILImage.Resampling.LANCZOS,
            )
            frame = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P", "PA") else "RGB")
    return frame, count


def _open_frame(data: IO[bytes], page: int) -> tuple[Image, int]:
    """The image positioned on `page`, not decoded, and its page count; every refusal of a
    draw that its headers tell (a page past the end, too many pixels)."""
    from PIL import Image as PILImage

    image = PILImage.open(data)
    count = _pages(data, image, page)
    if page > count:
        raise _past_end(page, count)
    image.seek(page - 1)
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise FailedPrecondition(
            f"the image is {image.width} x {image.height} pixels; images of more "
            f"than {MAX_IMAGE_PIXELS} pixels are not drawn"
        )
    return image, count


@contextlib.contextmanager
def _pillow_errors() -> Iterator[None]:
    try:
        yield
    except (FailedPrecondition, InvalidArgument, NotFound):
        raise  # the page's own verdict, from the checks of _open_frame
    except Exception as exc:
        # Whatever Pillow's parsers raise on the file: past the first frame they raise
        # what they meet (a TIFF page without a width is a TypeError, one of unknown
        # layout a SyntaxError; Image.open turns those into UnidentifiedImageError for the
        # first frame only), and each was a 500. Only the file and Pillow run in here.
        raise FailedPrecondition(f"the image cannot be read ({reason_of(exc)})") from exc


def _pages(data: IO[bytes], image: Image, page: int) -> int:
    """The pages shown of an image: a TIFF's first MAX_IMAGE_PAGES pages, one otherwise.

    A TIFF's pages are counted from their directories (core/tiff_ifds.py), not by Pillow:
    it counts by parsing each page whole, in time quadratic in their number (each is
    looked up in a list of those seen): 100,000 pages of 18 bytes each took 87 s. Drawing
    page N parses pages 1 to N, so the numbers those list are bounded too. Other formats'
    frames are an animation's, composed frame by frame; extraction reads the first frame,
    and so does the viewer."""
    if image.format != "TIFF":
        return 1
    try:
        values = list(tiff_ifds.page_values(data, MAX_IMAGE_PAGES))
    except ValueError as exc:
        raise FailedPrecondition(f"the image cannot be drawn: {exc}") from exc
    finally:
        data.seek(0)
    for number, listed in enumerate(values[:page], 1):
        if listed > MAX_TIFF_PAGE_VALUES:
            raise FailedPrecondition(
                f"the image cannot be drawn: page {number} of the TIFF lists {listed} numbers; "
                f"pages of more than {MAX_TIFF_PAGE_VALUES} are not read"
            )
    if sum(values[:page]) > PAGES_VALUES:
        raise FailedPrecondition(
            f"the image cannot be drawn: pages 1 to {page} of the TIFF list more than "
            f"{PAGES_VALUES} numbers (strip offsets and the like), each parsed to draw it"
        )
    return max(1, len(values))


def encode_png(image: Image, page_count: int) -> RenderedPage:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=6)
    return RenderedPage(out.getvalue(), image.width, image.height, page_count)


def renderable(media_type: str) -> bool:
    return media_type == PDF or media_type in IMAGES
