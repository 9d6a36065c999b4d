"""Layout rules for fields that no label announces: who issued a document
(services.extract.offline.company), their address (services.extract.offline.address), the
amount finally due, the currency.

Receipts end with several totals of which the last one paid counts; these rules encode
that, and which field each rule answers, for the offline extractor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

from bytereview.values.amounts import Amount, numbers
from bytereview.values.typed import InvalidValue, JsonValue, normalise
from services.extract.offline.address import address
from services.extract.offline.company import organisation
from services.extract.offline.labels import stacked
from services.extract.offline.ocrfix import fix_label
from services.extract.schema import Field

ORGANISATION_WORDS = frozenset(
    {"company", "vendor", "issuer", "merchant", "seller", "supplier", "store", "shop", "business"}
)
_TOTAL_LABELS = (
    ("grand total", 6),
    ("inclusive of", 6),
    ("incl gst", 6),
    ("incl. gst", 6),
    ("after adj", 6),
    ("total ttc", 6),
    ("total rounded", 5),
    ("rounded total", 5),
    ("nett total", 5),
    ("net total", 5),
    ("total due", 5),
    ("amount due", 5),
    ("balance due", 5),
    ("somme à payer", 5),
    ("net à payer", 5),
    ("te betalen", 5),
    ("zu zahlen", 5),
    ("gesamtbetrag", 5),
    ("rechnungsbetrag", 5),
    ("total amount", 4),
    ("total (incl", 4),
    ("total incl", 4),
    ("total payable", 4),
    ("montant total", 4),
    ("importe total", 4),
    ("totaal", 3),
    ("gesamt", 3),
    ("totale", 3),
    ("total", 2),
)
_NOT_A_TOTAL = re.compile(
    r"(?i)(sub\s*-?\s*tota|total\s*(qty|quantity|items?|excl|tax|gst|vat|stamp|discount|saving|ht\b)"
    r"|(tax|gst|vat)\s*total|excluding|exclusief|hors\s*taxe|\bnetto\b|included\s*in\s*total"
    # `Inclusive of 6% GST: 1.66` states the tax in the total, not the total.
    r"|incl\w*\.?\s+(of\s+)?\d+(\.\d+)?\s*%\s*(gst|vat|tax)"
    # A loyalty statement's `Total Points` counts points, not money.
    r"|\bpoints?\b)"
)
# `Totl 8 270.00`: OCR drops the word's last letter or one before it.
_CLIPPED_TOTAL = re.compile(r"\btot(?:a|l)\b")
_SUBTOTAL = re.compile(r"(?i)sub\s*-?\s*tota")
_ADDED = re.compile(r"(?i)\b(gst|vat|tax|service)")
# Words that head the columns of a totals line: `TOTAL CASH CHANGE 55.10 55.10 0.00`.
_MONEY_WORDS = frozenset(
    [
        "total",
        "cash",
        "change",
        "tendered",
        "paid",
        "payment",
        "rounding",
        "balance",
        "tax",
        "gst",
        "vat",
        "discount",
        "subtotal",
        "amount",
        "card",
        "credit",
        "visa",
        "due",
        "net",
    ]
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


_TOTAL_WORDS = frozenset({"total", "amount", "due", "sum", "payable", "paid", "grand", "balance"})
# Words that name the document, not a different amount: `invoice_total` is the total.
_DOCUMENT_WORDS = frozenset({"invoice", "receipt", "bill", "document", "order", "final", "gross"})


def is_total(field: Field) -> bool:
    """The amount finally due: named so, with no word naming another amount (`discount`)."""
    if field.data_type not in ("currency", "number"):
        return False
    name = set(re.findall(r"[a-z]+", field.name.lower()))
    if name - _TOTAL_WORDS - _DOCUMENT_WORDS:
        return False
    return bool(field_words(field) & _TOTAL_WORDS)


def is_layout_field(field: Field) -> bool:
    """Fields the layout rules answer (or know to be absent)."""
    return is_organisation(field) or is_address(field) or is_currency_code(field) or is_total(field)


def total(lines: Sequence[str], data_type: str) -> JsonValue:
    """The amount on the strongest total label; among equals the last one printed. With no
    total label, what was paid: the cash less the change, else the last subtotal."""
    best: tuple[int, int, Amount] | None = None
    end = len(lines)
    for i, line in enumerate(lines):
        low = fix_label(line).lower()
        if "summary" in low and (best is not None or _last_subtotal(lines[:i])):
            end = i
            break  # a tax summary table: its "Total" row splits the amount by tax code
        if _NOT_A_TOTAL.search(low):
            continue
        rank = next((r for label, r in _TOTAL_LABELS if label in low), 0)
        if not rank and _CLIPPED_TOTAL.search(low):
            rank = 2
        if not rank:
            continue
        found = _amount_near(lines, i, after=_label_end(low))
        if found is None and (value := stacked(lines, i)) is not None:
            found = next((a for a in reversed(numbers(value)) if not a.percent), None)
        if found is None or (best is not None and (rank, i) < best[:2]):
            continue
        # The total paid is never nothing: a later `TOTAL LOADING CHARGES 0.00` or
        # `TOTAL SAVINGS 0.00` totals something else. (A stronger label's zero stands: a paid
        # invoice's `Balance due 0.00`.)
        if best is not None and found.value == 0 and best[2].value != 0 and rank <= best[0]:
            continue
        best = (rank, i, found)
    paid = _cash_less_change(lines[:end])
    if best is None and paid is not None:
        return _normalised(paid.text, data_type)
    # `TOTAL 700` where the cash and the change print cents: OCR lost the point.
    if best is not None and paid is not None and _lost_point(best[2], paid):
        return _normalised(paid.text, data_type)
    if best is None:
        best = _last_subtotal(lines[:end])
    if best is None:
        return None
    return _normalised(_rounded(lines, best[1], best[2]), data_type)


def _normalised(value: str, data_type: str) -> JsonValue:
    try:
        return normalise(value, data_type)
    except InvalidValue:
        return None


def _lost_point(printed: Amount, paid: Amount) -> bool:
    """Whether `printed` is `paid` with its decimal point lost (`700` for `7.00`)."""
    return (
        not printed.decimals
        and bool(paid.decimals)
        and (printed.value == paid.value * 10**paid.decimals)
    )


_CASH = re.compile(r"(?i)^cash\b(?!\s*(sales?|receipt|bill|invoice))")
_CHANGE = re.compile(r"(?i)^change\b")


def _cash_less_change(lines: Sequence[str]) -> Amount | None:
    """What was paid: the cash handed over less the change given back (`CASH 50.00`,
    `CHANGE 20.20`), when both are printed with their amounts on their lines."""
    cash = change = None
    for i, line in enumerate(lines):
        if cash is None and _CASH.search(line.strip()):
            cash = _amount_near(lines, i, next_line=False)
        elif cash is not None and _CHANGE.search(line.strip()):
            change = _amount_near(lines, i, next_line=False)
            break
    if cash is None or change is None or abs(change.value) > abs(cash.value):
        return None
    places = max(cash.decimals, change.decimals)
    # Signs are the till's bookkeeping (`Cash -300.00`), not less money handed over.
    value = abs(cash.value) - abs(change.value)
    return Amount(value, places, 0, 0, percent=False)


def _label_end(low: str) -> int:
    """Where the total's label ends on its line: its amount is printed after it, to the right
    (`%1S9 Amt(RM) GST(RM) Total(RM)`: the 9 before the label is no total)."""
    found = [low.find(label) + len(label) for label, _ in _TOTAL_LABELS if label in low]
    found += [m.end() for m in _CLIPPED_TOTAL.finditer(low)]
    return min(found, default=0)


def _last_subtotal(lines: Sequence[str]) -> tuple[int, int, Amount] | None:
    """A receipt that prints no total line (`SUBTOTAL`, `ROUNDING`, `SUBTOTAL` again) is
    paid its last subtotal, after rounding; unless a tax or a charge is added after it (then
    the total is a later line OCR could not read)."""
    best = None
    for i, line in enumerate(lines):
        low = fix_label(line).lower()
        if _SUBTOTAL.search(low) and (found := _amount_near(lines, i)) is not None:
            best = (1, i, found)
        elif best is not None and _ADDED.search(low):
            best = None
    return best


def _rounded(lines: Sequence[str], at: int, value: Amount) -> str:
    """The total after a `ROUNDING ADJ -0.01` line that follows it, as cash receipts print."""
    for i in range(at + 1, min(at + 4, len(lines))):
        if "round" in lines[i].lower():
            adjustment = _amount_near(lines, i, next_line=False)
            if adjustment is not None and abs(adjustment.value) < Decimal("0.1"):
                places = max(value.decimals, adjustment.decimals)
                return f"{value.value + adjustment.value:.{places}f}"
    return value.text


# OCR reads a zero as the letter O inside amounts: `-O.01`, `7O.00`.
_OCR_ZERO = re.compile(r"(?<=\d)[Oo]|(?<=[.,-])[Oo](?=[\d.,Oo])|[Oo](?=[.,]\d)")


# `RM.34.80`, `Rs.120.00`: the dot after a currency's abbreviation is no decimal point.
_CURRENCY_DOT = re.compile(r"(?i)(?<=\brm)\.(?=\d)|(?<=\brs)\.(?=\d)")


def _amount_near(
    lines: Sequence[str], i: int, *, next_line: bool = True, after: int = 0
) -> Amount | None:
    """The amount on the label's line (after position `after`, where the label ends), else on
    the next line. A percentage is a rate, not an amount; where the line prints decimals, a
    bare integer is a count or a code."""
    # A label in a sentence is not a label over the next line's amount.
    # Nor is one followed by its own (unreadable) value: `Total Payable: OPL`.
    next_line = next_line and len(lines[i]) < 40 and not re.search(r":\s*\S", lines[i])
    for n, raw_line in enumerate((lines[i], *lines[i + 1 : i + 1 + next_line])):
        line = _CURRENCY_DOT.sub(" ", _OCR_ZERO.sub("0", raw_line))
        amounts = [a for a in numbers(line) if not a.percent and (n or a.start >= after)]
        if any(a.decimals for a in amounts):
            amounts = [a for a in amounts if a.decimals]
        if not amounts:
            continue
        # Labels heading as many amounts as they name: take the total's own column.
        head = re.findall(r"[a-z]+", fix_label(line[: amounts[0].start]).lower())
        labels = [w for w in head if w in _MONEY_WORDS]
        if len(amounts) > 1 and len(labels) == len(amounts) and "total" in labels:
            return amounts[labels.index("total")]
        return amounts[-1]
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
    if is_total(field):
        return total(lines, field.data_type)
    return None
