"""The seller's address: the lines under its name, up to the first contact or tax line."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bytereview.values.typed import JsonValue
from services.extract.offline.company import (
    AFTER_ADDRESS,
    BUSINESS_WORD,
    LEGAL_FORM,
    NOT_THE_ISSUER,
    REGISTRATION,
    organisation_span,
)
from services.extract.offline.ocrfix import fix_label, fix_words
from services.extract.offline.placenames import STATES, fix_place_words

# `Licensee of McDonald's`, as OCR reads it too (`License2 of`).
_ABOUT_THE_COMPANY = re.compile(r"(?i)\b(formerly|licen\w*\s+of|owned\s+by|operated\s+by)\b")
# A phone number (`03-6258 0869`, `+607-357.1177`) or an e-mail address; a run of nine or more
# digits is a tax, phone or document number (`GSI 10 : 002017394688`): no address has one.
_PHONE_OR_EMAIL = re.compile(r"\b0\d{1,2}\s?-\s?\d{6,8}\b|@|\+\d{2}|\d{9,}")
# An item sold, priced at the end of its line (`WS CUT SCISSORS 18.00 S`).
_PRICED = re.compile(r"\d[.,]\d{2}\s*[A-Z]?$")
# Words that name a street, a building or a floor: a line with one is an address line even
# without a number (`AVTIVO PLAZA, LOT B-F-ll`, `PARADIGM MALL`).
_ADDRESS_WORD = re.compile(
    r"(?i)\b(jalan|jln|lorong|lrg|taman|tmn|persiaran|lebuh|lot|plaza|mall|block|blk|level|"
    r"floor|tingkat|bangunan|kompleks|complex|road|street|avenue)\b"
)
# A postcode of five digits as OCR misreads it, some of them as look-alike letters (`4D170`,
# `454OO` glued to the town): three real digits and the look-alikes of 0, 1, 5 and 8.
_POSTCODE = re.compile(r"(?<!\d)\d[\dODSIlB]{4}(?!\d)")
_AS_DIGIT = str.maketrans("ODSIlB", "005118")


def _postcode(match: re.Match[str]) -> str:
    code = match.group(0)
    return code.translate(_AS_DIGIT) if sum(ch.isdigit() for ch in code) >= 3 else code


# The postcode, the town and the state or country after it (`81750 Masai, Johor`,
# `56000 Kuala Lumpur, Malaysia`): the address's last line. Not a lot's or a house's number.
_POSTCODE_TOWN_STATE = re.compile(
    r"(?i)(?<!lot)(?<!no)(?<!ptd)[\s,.]+\d{5}[\s,.]*[^\W\d_][^,.]*[,.]\s*[^\W\d_]"
    r"|^\d{5}[\s,.]*[^\W\d_][^,.]*[,.]\s*[^\W\d_]"
)
_DATE_OR_TIME = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{1,2}:\d{2}")

_REGISTRATION_LABEL = re.compile(
    r"(?i)company\s*no|c[o0]\s*[.-]?\s*reg|\broc\b|\bbr\s*no|reg\.?\s*no"
)
# `Pay By: CASH`, `Cashier: 3`: a label with a value is no part of an address, but `NO: 28`
# and `LOT: 5` start one.
_LABELLED = re.compile(r"([^\W\d_]{2,})\.?\s*:")
# `NO: 28`, `LOT: 5`, and glued by OCR, `LotNO:20`.
_ADDRESS_START = re.compile(r"(?i)(no|lot|unit|level|blk|block|lorong|jalan)(\.?\s*no)?")


# The last word of a line, unless the line goes on (`SELANGOR DARUL` / `EHSAN`, `JOHOR,`).
_LAST_WORD = re.compile(r"([^\W\d_]+)[\s.]*$")


def _complete(block: Sequence[str]) -> bool:
    """Whether the address is complete: a postcode, then the town and the state (`81750 Masai,
    Johor`), or a line ending with the state or the country (`47200 Subang` / `Selangor`)."""
    if not block:
        return False
    if _POSTCODE_TOWN_STATE.search(block[-1]):
        return True
    last = _LAST_WORD.search(block[-1])
    postcode = any(re.search(r"(?<!\d)\d{5}(?!\d)", line) for line in block)
    return postcode and last is not None and last.group(1).lower() in STATES


def _state_line(text: str) -> bool:
    """A line of only a state's or the country's name (`Malaysia.`, `Darul Ehsan`): the
    address goes on after its town and state."""
    words = [w.lower() for w in re.findall(r"[^\W\d_]+", text)]
    return bool(words) and all(w in STATES or w == "darul" for w in words)


# A code, not a street: six digits or more and no word (`X-122228`, a registration number
# printed without its parentheses or label).
def _is_code(text: str) -> bool:
    return sum(ch.isdigit() for ch in text) >= 6 and not re.search(r"[^\W\d_]{2,}", text)


def _is_labelled(text: str) -> bool:
    return any(not _ADDRESS_START.fullmatch(m.group(1)) for m in _LABELLED.finditer(text))


def address(lines: Sequence[str]) -> JsonValue:
    """The lines under the issuer's name up to the first contact or tax line. A name line
    before the first line with a number (a branch or brand under the company) is skipped."""
    span = organisation_span(lines)
    if span is None:
        return None
    block: list[str] = []
    for line in lines[span[1] : span[1] + 8]:
        text = fix_place_words(line.strip())
        label_view = fix_label(text)
        if not text:
            continue
        ends = (
            AFTER_ADDRESS.search(label_view)
            or _DATE_OR_TIME.search(text)
            or _PHONE_OR_EMAIL.search(text)
            or _REGISTRATION_LABEL.search(label_view)
            or _is_labelled(text)
            or _PRICED.search(text)
        )
        if _complete(block) and not any(c.isdigit() for c in text) and not _state_line(text):
            ends = True  # a branch's name after the full address: `AEON SHAH ALAM`
        if ends:
            if block:
                break
            continue  # a date or a tax number printed between the name and the address
        if not block and (
            REGISTRATION.search(text)
            or LEGAL_FORM.search(text)
            or BUSINESS_WORD.search(text)
            or NOT_THE_ISSUER.search(text)
        ):
            continue  # registration number or the rest of the name, before the address
        block.append(text)
    # `DOMINO'S PIZZA PERMAS JAYA` / `No.12, Jalan Permas Jaya 10`: the address starts at
    # its first number or a street or building word.
    while len(block) > 1 and (
        not (any(ch.isdigit() for ch in block[0]) or _ADDRESS_WORD.search(block[0]))
        or REGISTRATION.search(block[0])
        or _is_code(block[0])
        or _ABOUT_THE_COMPANY.search(block[0])
    ):
        block.pop(0)
    return _POSTCODE.sub(_postcode, fix_words(" ".join(block))) or None
