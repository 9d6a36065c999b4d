"""Layout rules for fields that no label announces: who issued a document, their address,
the amount finally due, the currency.

Receipts and invoices rarely print "Company:" before the seller's name; they put it at
the top, followed by the address, and end with several totals of which the last one
paid counts. These rules encode that, for the offline extractor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from services.extract.schema import Field, InvalidValue, JsonValue, normalise

ORGANISATION_WORDS = frozenset(
    {"company", "vendor", "issuer", "merchant", "seller", "supplier", "store", "shop", "business"}
)
_LEGAL_FORM = re.compile(
    r"(?i)(sdn\.?\s*bhd|bhd|\bltd\b|limited|\binc\b|\bllc\b|gmbh|\bs\.?a\.?s?\b|\bplc\b|"
    r"\bco\.|corporation|\bcorp\b|enterprise|trading|restaurant|\bsp\.\s*z\s*o\.?\s*o|\bb\.?v\.?\b)"
)
# Lines that end the address block under the name.
_AFTER_ADDRESS = re.compile(
    r"(?i)(\btel\b|phone|fax|gst|\bvat\b|invoice|receipt|\bdate\b|cashier|e-?mail|www\.|"
    r"http|\bno\s*:|reg\.?\s*no|co\.?\s*no|document)"
)
_REGISTRATION = re.compile(
    r"(?i)^\(?\s*[\w-]*\d[\w-]*\s*\)?$|company\s*no|c[o0]\s*[.-]?\s*reg|\broc\b|\bbr\s*no"
)
# A registration number printed after the name: `GARDENIA BAKERIES (KL) SDN BHD (139386X)`.
_TRAILING_REGISTRATION = re.compile(r"\s*[(\[]\s*[\dA-Z-]*\d[\dA-Z-]*\s*[)\]]?\s*$")
_PHONE_OR_EMAIL = re.compile(r"\b0\d{1,2}\s?-\s?\d{6,8}\b|@")
_DATE_OR_TIME = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{1,2}:\d{2}")
_NOT_A_NAME = re.compile(r"(?i)(tax\s*invoice|receipt|invoice|welcome|thank|copy|page\s*\d)")
_TOTAL_LABELS = (
    ("grand total", 6),
    ("inclusive of", 6),
    ("incl gst", 6),
    ("incl. gst", 6),
    ("after adj", 6),
    ("total rounded", 5),
    ("rounded total", 5),
    ("nett total", 5),
    ("net total", 5),
    ("total due", 5),
    ("amount due", 5),
    ("balance due", 5),
    ("total amount", 4),
    ("total (incl", 4),
    ("total incl", 4),
    ("total payable", 4),
    ("total", 2),
)
_NOT_A_TOTAL = re.compile(
    r"(?i)(sub\s*-?\s*total|total\s*(qty|quantity|items?|excl|tax|gst|vat|stamp|discount|saving)"
    r"|(tax|gst|vat)\s*total|excluding)"
)
_CURRENCIES = (
    ("USD", r"\bUSD\b|US\$|\$"),
    ("EUR", r"\bEUR\b|€"),
    ("GBP", r"\bGBP\b|£"),
    ("INR", r"\bINR\b|₹|\bRs\.?"),
    ("PLN", r"\bPLN\b|\bzł"),
    ("MYR", r"\bMYR\b|\bRM\s?\d"),
    ("CHF", r"\bCHF\b"),
    ("JPY", r"\bJPY\b|¥"),
)


def field_words(field: Field) -> set[str]:
    return set(re.findall(r"[a-z]+", f"{field.name} {field.instruction}".lower()))


def is_organisation(field: Field) -> bool:
    return bool(field_words(field) & ORGANISATION_WORDS) and field.data_type in ("text", "name")


def is_address(field: Field) -> bool:
    return field.data_type == "address" or "address" in field_words(field)


def is_currency_code(field: Field) -> bool:
    return field.data_type == "text" and "currency" in field_words(field)


def _letters(line: str) -> int:
    return sum(ch.isalpha() for ch in line)


def _shouting(line: str) -> bool:
    """Printed names are in capitals; handwriting and slogans at the top mostly are not."""
    letters = [ch for ch in line if ch.isalpha()]
    return len(letters) >= 3 and sum(ch.isupper() for ch in letters) >= 0.7 * len(letters)


def _name_like(line: str) -> bool:
    return (
        _letters(line) >= 3
        and not _NOT_A_NAME.search(line)
        and not _AFTER_ADDRESS.search(line)
        and not any(ch.isdigit() for ch in line)
    )


def organisation_span(lines: Sequence[str]) -> tuple[int, int] | None:
    """Lines [start, end) of the issuer's name: a legal form near the top (with the line above
    when the name wraps), else the first line in capitals, else the first name-like line."""
    top = [(i, ln) for i, ln in enumerate(lines[:12]) if ln.strip()]
    for i, line in top:
        if _LEGAL_FORM.search(line) and _letters(line) >= 4:
            # `LIAN CHI PU TIAN VEGETARIAN` / `RESTAURANT SDN BHD`: a short line that starts
            # with the legal form's word continues the name above it.
            wraps = i > 0 and _LEGAL_FORM.match(line.strip()) is not None
            if wraps and _name_like(lines[i - 1]) and _shouting(lines[i - 1]):
                return i - 1, i + 1
            return i, i + 1
    for i, line in top:
        if _name_like(line) and _shouting(line):
            return i, i + 1
    for i, line in top:
        if _name_like(line):
            return i, i + 1
    return None


def organisation(lines: Sequence[str]) -> JsonValue:
    span = organisation_span(lines)
    if span is None:
        return None
    name = " ".join(ln.strip() for ln in lines[span[0] : span[1]])
    return _TRAILING_REGISTRATION.sub("", name) or name


def address(lines: Sequence[str]) -> JsonValue:
    """The lines under the issuer's name up to the first contact or tax line."""
    span = organisation_span(lines)
    if span is None:
        return None
    parts: list[str] = []
    for line in lines[span[1] : span[1] + 7]:
        text = line.strip()
        if not text:
            continue
        if _REGISTRATION.search(text) and not parts:
            continue
        if any(p.search(text) for p in (_AFTER_ADDRESS, _DATE_OR_TIME, _PHONE_OR_EMAIL)):
            if parts:
                break
            continue  # a date or a tax number printed between the name and the address
        if not parts and (_REGISTRATION.search(text) or _LEGAL_FORM.search(text)):
            continue  # registration number or the rest of the name, before the address
        parts.append(text)
    return " ".join(parts) or None


def total(lines: Sequence[str], data_type: str) -> JsonValue:
    """The amount on the strongest total label; among equals the last one printed."""
    best: tuple[int, int, JsonValue] | None = None
    for i, line in enumerate(lines):
        low = line.lower()
        if best is not None and "summary" in low:
            break  # a tax summary table: its "Total" row splits the amount by tax code
        if "total" not in low and "due" not in low:
            continue
        if _NOT_A_TOTAL.search(low):
            continue
        rank = next((r for label, r in _TOTAL_LABELS if label in low), 0)
        if not rank:
            continue
        value = _amount_near(lines, i, data_type)
        if value is not None and (best is None or (rank, i) >= best[:2]):
            best = (rank, i, value)
    if best is None:
        return None
    return _rounded(lines, best[1], best[2], data_type)


def _rounded(lines: Sequence[str], at: int, value: JsonValue, data_type: str) -> JsonValue:
    """The total after a `ROUNDING ADJ -0.01` line that follows it, as cash receipts print."""
    if not isinstance(value, int | float):
        return value
    for i in range(at + 1, min(at + 4, len(lines))):
        if "round" in lines[i].lower():
            adjustment = _amount_near(lines, i, data_type, next_line=False)
            if isinstance(adjustment, int | float) and abs(adjustment) < 0.1:
                return round(value + adjustment, 2)
    return value


# OCR reads a zero as the letter O inside amounts: `-O.01`, `7O.00`.
_OCR_ZERO = re.compile(r"(?<=[\d.,-])[Oo]|[Oo](?=[.,]\d)")


def _amount_near(
    lines: Sequence[str], i: int, data_type: str, *, next_line: bool = True
) -> JsonValue:
    """The last amount on the label's line, else on the next line."""
    for raw_line in (lines[i], *lines[i + 1 : i + 1 + next_line]):
        line = _OCR_ZERO.sub("0", raw_line)
        amounts = re.findall(r"-?\d[\d,.']*[.,]\d{2}\b|-?\d+\b", line)
        for raw in reversed(amounts):
            try:
                value = normalise(raw, data_type)
            except InvalidValue:
                continue
            if value is not None:
                return value
    return None


def currency_code(text: str) -> JsonValue:
    """The ISO 4217 code of the currency the document names most often."""
    counts = {code: len(re.findall(pattern, text)) for code, pattern in _CURRENCIES}
    code, count = max(counts.items(), key=lambda item: item[1])
    return code if count else None


def by_layout(text: str, field: Field) -> JsonValue:
    """A value found by position rather than by label, or None if no rule applies."""
    lines = [ln for ln in (raw.strip() for raw in text.splitlines()) if ln]
    if is_organisation(field):
        return organisation(lines)
    if is_address(field):
        return address(lines)
    if is_currency_code(field):
        return currency_code(text)
    if field.data_type == "currency" and field_words(field) & {"total", "amount", "due"}:
        return total(lines, field.data_type)
    return None
