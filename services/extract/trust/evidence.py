"""Evidence: finding where a value is printed, and checking a quote against the document.

An extractor cites a quote for each value (the offline extractor locates its own values
here; Gemini is asked for one). The platform never takes a quote on trust: `verify` looks
for it in the document's own text (text layer or OCR), folded so that case, spacing,
punctuation and the usual OCR confusions (O/0, I/l/1, S/5, B/8, Z/2) do not matter, then
checks that the value can be read from it. A quote the document does not contain, or one
that does not hold the value, leaves the value unverified.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from bytereview.values.amounts import numbers
from bytereview.values.typed import InvalidValue, JsonValue, normalise
from services.extract.base import Box, Evidence
from services.extract.reading.pages import PageText
from services.extract.schema import Field

NUMERIC_TYPES = frozenset({"currency", "number", "percentage", "integer"})
DATE_TYPES = frozenset({"date", "date_mdy", "date_dmy", "date_ymd", "time"})
# Folded text this similar to a value still holds it (OCR-corrected words, a joined address).
CLOSE_ENOUGH = 0.8
# Folded texts longer than this are compared exactly, never by similarity: difflib's ratio
# takes time in the product of the two lengths (two of 10,000 characters, a second), and a
# value that long is the model quoting the document, not one OCR misread a letter of.
MAX_FUZZY = 2000
_CONFUSIONS = str.maketrans({"o": "0", "i": "1", "l": "1", "s": "5", "b": "8", "z": "2"})
# A currency code is often read from its symbol: `$ 4.11` holds `USD`.
_CURRENCY_SIGNS = {
    "USD": re.compile(r"US\$|\$"),
    "EUR": re.compile(r"€"),
    "GBP": re.compile(r"£"),
    "INR": re.compile(r"₹|\bRs\.?"),
    "JPY": re.compile(r"¥"),
    "MYR": re.compile(r"\bRM\s?\d"),
    "PLN": re.compile(r"zł"),
}


@dataclass(frozen=True, slots=True)
class Folded:
    """Text reduced to folded letters and digits. `index[k]` is the original position of
    folded character k; `starts`/`ends` mark where a word starts and ends."""

    text: str
    index: tuple[int, ...]
    starts: frozenset[int]
    ends: frozenset[int]

    def find(self, needle: str) -> Iterator[tuple[int, int]]:
        """Original [start, end) spans of whole-word occurrences of a folded needle."""
        if not needle:
            return
        at = self.text.find(needle)
        while at >= 0:
            last = at + len(needle) - 1
            if at in self.starts and last in self.ends:
                yield self.index[at], self.index[last] + 1
            at = self.text.find(needle, at + 1)


def fold(text: str) -> Folded:
    chars: list[str] = []
    index: list[int] = []
    starts: set[int] = set()
    ends: set[int] = set()
    in_word = False
    for i, ch in enumerate(text):
        plain = "".join(
            c for c in unicodedata.normalize("NFKD", ch.casefold()) if not unicodedata.combining(c)
        )
        kept = [c for c in plain if c.isalnum()]
        if not kept:
            if in_word:
                ends.add(len(chars) - 1)
            in_word = False
            continue
        if not in_word:
            starts.add(len(chars))
        in_word = True
        for c in kept:
            chars.append(c.translate(_CONFUSIONS))
            index.append(i)
    if in_word:
        ends.add(len(chars) - 1)
    return Folded("".join(chars), tuple(index), frozenset(starts), frozenset(ends))


@functools.lru_cache(maxsize=256)
def _folded_text(text: str) -> str:
    """A value's folded text, once: `occurrences` holds it against every line of a
    document (a 10,000-character value folded for each of 1,000 lines took 8 s)."""
    return fold(text).text


def _decimal(value: JsonValue) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def holds(quote: str, value: JsonValue, field: Field) -> float:
    """How well `quote` holds `value`: 1.0 when the value can be read from it as is, the
    similarity when close (at least CLOSE_ENOUGH), else 0."""
    if value is None or not quote.strip():
        return 0.0
    if isinstance(value, bool) or field.data_type == "boolean":
        return 1.0  # a tick box: the quote is its label, nothing to read a value from
    if field.data_type in NUMERIC_TYPES:
        wanted = _decimal(value)
        scale = Decimal(100) if field.data_type == "percentage" else Decimal(1)
        found = [a.value for a in numbers(quote)]
        return (
            1.0
            if wanted is not None and any(a == wanted or a == wanted * scale for a in found)
            else 0.0
        )
    if field.data_type in DATE_TYPES:
        for line in quote.splitlines() or [quote]:
            # A plain `date` may have been read either way round (03/08/2014): the quote
            # holds it if one reading gives the value.
            for day_first in (True, False) if field.data_type == "date" else (True,):
                try:
                    if normalise(line, field.data_type, day_first=day_first) == value:
                        return 1.0
                except InvalidValue:
                    continue
        return 0.0
    sign = _CURRENCY_SIGNS.get(str(value))
    if sign is not None and sign.search(quote):
        return 1.0
    wanted_text = _folded_text(str(value))
    folded = fold(quote)
    if next(folded.find(wanted_text), None) is not None:
        return 1.0
    return closeness(wanted_text, folded.text)


def closeness(a: str, b: str) -> float:
    """difflib's similarity of `a` and `b` when at least CLOSE_ENOUGH, else 0.

    Its upper bounds first, from the lengths and then from the letters (each linear):
    comparing a 1,000-character value with each of a 20-page document's lines took 6 s and
    with a 200,000-character quote 13 s, all but never close; the bounds settle those at
    once, with the same answers."""
    if max(len(a), len(b)) > MAX_FUZZY:
        return 0.0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.real_quick_ratio() < CLOSE_ENOUGH or matcher.quick_ratio() < CLOSE_ENOUGH:
        return 0.0
    ratio = matcher.ratio()
    return ratio if ratio >= CLOSE_ENOUGH else 0.0


def _lines(page: PageText) -> Iterator[tuple[int, int]]:
    """[start, end) of each non-blank line of a page."""
    start = 0
    for raw in page.text.split("\n"):
        end = start + len(raw)
        if raw.strip():
            lead = len(raw) - len(raw.lstrip())
            yield start + lead, start + len(raw.rstrip())
        start = end + 1


def _evidence(document: str, page: PageText, start: int, end: int) -> Evidence:
    return Evidence(document, page.number, page.text[start:end], page.box_of(start, end))


def locate(
    value: JsonValue, field: Field, document: str, pages: Sequence[PageText]
) -> Evidence | None:
    """Where `value` is printed: the line (or span) of the page that holds it, or None."""
    if value is None:
        return None
    if field.data_type in NUMERIC_TYPES or field.data_type in DATE_TYPES:
        # A total is printed several times (TOTAL, CASH, the tax summary): prefer the line
        # naming the field (`total`), else the last one.
        words = set(re.findall(r"[a-z]{3,}", f"{field.name} {field.instruction}".lower()))
        best: tuple[int, PageText, int, int] | None = None
        for page in pages:
            for start, end in _lines(page):
                line = page.text[start:end]
                if holds(line, value, field) < 1.0:
                    continue
                named = int(any(w in line.lower() for w in words))
                if field.data_type in DATE_TYPES and best is not None and best[0] >= named:
                    continue  # a document's own date comes first
                if best is None or named >= best[0]:
                    best = (named, page, start, end)
        return None if best is None else _evidence(document, best[1], best[2], best[3])
    wanted = fold(str(value)).text
    for page in pages:
        for start, end in fold(page.text).find(wanted):
            return _evidence(document, page, start, end)
    sign = _CURRENCY_SIGNS.get(str(value))
    for page in pages if sign is not None else []:
        for start, end in _lines(page):
            if sign.search(page.text[start:end]):  # type: ignore[union-attr]
                return _evidence(document, page, start, end)
    # Not printed as is (OCR words corrected, lines joined): the closest run of 1-4 lines.
    close: tuple[float, PageText, int, int] | None = None
    for page in pages:
        lines = list(_lines(page))
        for i in range(len(lines)):
            for j in range(i, min(i + 4, len(lines))):
                start, end = lines[i][0], lines[j][1]
                ratio = holds(page.text[start:end], value, field)
                if ratio and (close is None or ratio > close[0]):
                    close = (ratio, page, start, end)
    return None if close is None else _evidence(document, close[1], close[2], close[3])


@dataclass(frozen=True, slots=True)
class Check:
    """What verification found. `verified`: the quote is in the document's own text and
    the value can be read from it."""

    quote_found: bool
    holds: float
    page: int = 0
    box: Box | None = None
    # OCR's lowest and mean recognition score over the runs the quote was found in; None
    # when the quote was not found or came from a text layer.
    ocr_min: float | None = None
    ocr_mean: float | None = None
    # The characters OCR expects to have misread in the quote: the sum of 1 - score over the
    # characters it read (a long quote read at 0.95 holds more misreads than a short one).
    ocr_misreads: float | None = None

    @property
    def verified(self) -> bool:
        return self.quote_found and self.holds > 0


def verify(
    evidence: Evidence | None,
    value: JsonValue,
    field: Field,
    pages: Mapping[str, Sequence[PageText]],
) -> Check:
    """Look for the cited quote in the document's own text, the cited page first."""
    if evidence is None or value is None:
        return Check(quote_found=False, holds=0.0)
    wanted = fold(evidence.quote).text
    cited = pages.get(evidence.document)
    # A quote cited without (or with an unknown) document is looked for in all of them.
    documents = [cited] if cited is not None else list(pages.values())
    for document_pages in documents:
        ordered = sorted(document_pages, key=lambda p: p.number != evidence.page)
        for page in ordered:
            span = next(fold(page.text).find(wanted), None)
            if span is not None:
                scores = page.scores_of(*span)
                return Check(
                    quote_found=True,
                    holds=holds(evidence.quote, value, field),
                    page=page.number,
                    box=page.box_of(*span) or evidence.box,
                    ocr_min=min(scores) if scores else None,
                    ocr_mean=sum(scores) / len(scores) if scores else None,
                    ocr_misreads=sum(1.0 - s for s in scores) if scores else None,
                )
    return Check(quote_found=False, holds=holds(evidence.quote, value, field))


def occurrences(value: JsonValue, field: Field, pages: Sequence[PageText]) -> int:
    """How many lines of the document hold the value: a total printed twice (TOTAL, CASH
    tendered with no change, the tax summary) is more likely the total."""
    if value is None:
        return 0
    count = 0
    for page in pages:
        for start, end in _lines(page):
            if holds(page.text[start:end], value, field) >= 1.0:
                count += 1
    return count
