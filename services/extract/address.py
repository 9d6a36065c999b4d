"""The seller's address: the lines under its name, up to the first contact or tax line."""

from __future__ import annotations

import re
from collections.abc import Sequence

from services.extract.company import (
    AFTER_ADDRESS,
    BUSINESS_WORD,
    LEGAL_FORM,
    NOT_THE_ISSUER,
    REGISTRATION,
    organisation_span,
)
from services.extract.ocrfix import fix_label, fix_words
from services.extract.schema import JsonValue

_ABOUT_THE_COMPANY = re.compile(r"(?i)\b(formerly|licensee\s+of|owned\s+by|operated\s+by)\b")
_PHONE_OR_EMAIL = re.compile(r"\b0\d{1,2}\s?-\s?\d{6,8}\b|@")
_DATE_OR_TIME = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{1,2}:\d{2}")


_REGISTRATION_LABEL = re.compile(
    r"(?i)company\s*no|c[o0]\s*[.-]?\s*reg|\broc\b|\bbr\s*no|reg\.?\s*no"
)
# `Pay By: CASH`, `Cashier: 3`: a label with a value is no part of an address, but `NO: 28`
# and `LOT: 5` start one.
_LABELLED = re.compile(r"([^\W\d_]{2,})\.?\s*:")
_ADDRESS_START_WORDS = frozenset({"no", "lot", "unit", "level", "blk", "block", "lorong", "jalan"})


def _is_labelled(text: str) -> bool:
    return any(m.group(1).lower() not in _ADDRESS_START_WORDS for m in _LABELLED.finditer(text))


def address(lines: Sequence[str]) -> JsonValue:
    """The lines under the issuer's name up to the first contact or tax line. A name line
    before the first line with a number (a branch or brand under the company) is skipped."""
    span = organisation_span(lines)
    if span is None:
        return None
    block: list[str] = []
    for line in lines[span[1] : span[1] + 8]:
        text = line.strip()
        label_view = fix_label(text)
        if not text:
            continue
        ends = (
            AFTER_ADDRESS.search(label_view)
            or _DATE_OR_TIME.search(text)
            or _PHONE_OR_EMAIL.search(text)
            or _REGISTRATION_LABEL.search(label_view)
            or _is_labelled(text)
        )
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
    # its first number.
    while len(block) > 1 and (
        not any(ch.isdigit() for ch in block[0])
        or REGISTRATION.search(block[0])
        or _ABOUT_THE_COMPANY.search(block[0])
    ):
        block.pop(0)
    return fix_words(" ".join(block)) or None
