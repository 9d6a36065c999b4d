"""Reading numbers and money amounts as documents print them.

A number is one token: digits, optionally grouped in threes by `,` `.` `'` or a
non-breaking space, optionally followed by a decimal part. An ordinary space never
joins two numbers (`50.00 50.00 0.00` is three amounts), except in the European form
`1 234,56` where the groups of three and the decimal comma leave no doubt.
Amounts keep the decimals the document printed: `30.90` stays `"30.90"`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_GROUPED = (
    r"[1-9]\d{0,2}(?:,\d{3})+"  # 1,234,567
    r"|[1-9]\d{0,2}(?:\.\d{3})+(?=,\d)"  # 1.234,56 (a dot groups only before a decimal comma)
    r"|[1-9]\d{0,2}(?:\.\d{3}){2,}"  # 1.234.567
    r"|[1-9]\d{0,2}(?:['\u2019]\d{3})+"  # 1'234.50 (Swiss)
    r"|[1-9]\d{0,2}(?:[\u00a0\u202f]\d{3})+"  # 1 234 with a non-breaking space
    r"|[1-9]\d{0,2}(?: \d{3})+(?=,\d{2}(?!\d))"  # 1 234,56
)
NUMBER = re.compile(
    r"(?:(?<![\d.,'])(?P<sign>[-\u2212]\s?|\(\s?))?(?<![\d.,'])"
    # `.01` as receipts print a rounding of one cent: no digit before the point.
    r"(?:(?P<int>" + _GROUPED + r"|\d+)|(?<![\w.,])(?=\.\d{2}(?!\d)))"
    r"(?:(?P<dec>[.,])(?P<frac>\d+))?"
    r"(?![\d])"
)


@dataclass(frozen=True, slots=True)
class Amount:
    value: Decimal
    # Digits after the decimal point as printed: `12,50` has 2, `1939` has 0.
    decimals: int
    start: int
    end: int
    # A percentage (`6%`) is a rate, never an amount of money.
    percent: bool

    @property
    def text(self) -> str:
        """The canonical form: `-1234.50`, the printed decimals kept."""
        return f"{self.value:.{self.decimals}f}"


def numbers(text: str) -> list[Amount]:
    """Every number in `text`, left to right."""
    text = text.replace("\u2212", "-")
    found = []
    for match in NUMBER.finditer(text):
        digits = re.sub(r"\D", "", match["int"] or "0")
        frac = match["frac"] or ""
        try:
            value = Decimal(f"{digits}.{frac}" if frac else digits)
        except InvalidOperation:
            continue
        sign = (match["sign"] or "").strip()
        if sign == "-" or (sign == "(" and text[match.end() : match.end() + 1] == ")"):
            value = -value
        after = text[match.end() : match.end() + 2].lstrip()
        found.append(Amount(value, len(frac), match.start(), match.end(), after.startswith("%")))
    return found


def first_number(text: str) -> Amount | None:
    found = numbers(text)
    return found[0] if found else None


def amount_text(value: object) -> str | None:
    """The canonical amount for `value`: a number from a model or a person (at least two
    decimals, as money is written, and every one it has: 12.505 was stored "12.50") or the
    first number in a text (its own decimals); None if there is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        exact = Decimal(repr(value))
        if not exact.is_finite():
            return None
        places = -int(exact.as_tuple().exponent)
        return f"{exact:.2f}" if places <= 2 else format(exact, "f")
    found = first_number(str(value))
    return None if found is None else found.text
