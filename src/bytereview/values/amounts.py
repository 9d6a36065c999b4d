"""Reading numbers and money amounts as documents print them.

A number is one token: digits, optionally grouped in threes by `,` `.` `'` or a
non-breaking space, optionally followed by a decimal part. An ordinary space never
joins two numbers (`50.00 50.00 0.00` is three amounts), except in the European form
`1 234,56` where the groups of three and the decimal comma leave no doubt.
Amounts keep the decimals the document printed: `30.90` stays `"30.90"`.
"""

from __future__ import annotations

import re
import unicodedata
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


# Around a number typed as one: spaces, currency symbols, a percent sign, parentheses, and
# at most a currency code (2-3 capitals: RM, USD).
_AROUND = re.compile(r"[\s%()]*(?:[A-Z]{2,3})?[\s%()]*")


def not_one_number(text: str) -> str:
    """Why `text`, typed by a person as a number, is not one ('' if it is, or holds none):
    a document's reading takes the first number found, so `12 or 13` was stored 12 and
    `INV-2` as -2."""
    found = numbers(text)
    if not found:
        return ""  # the reading says there is no number
    if len(found) > 1:
        return "is not one number"
    [amount] = found
    before, after = text[: amount.start], text[amount.end :]
    printed = text[amount.start : amount.end].lstrip()
    minus = printed.startswith("-") or before.rstrip().endswith("-")
    if minus and before.strip("- ") and not before.endswith((" ", " -")):
        # `INV-2`, `USD-2`: a hyphen joined to a word, not a minus sign.
        return "is not one number (a hyphen after a word is not a minus sign)"
    if not all(_AROUND.fullmatch(_symbols_out(side)) for side in (before.rstrip("-+ "), after)):
        return "holds more than a number"
    return ""


def _symbols_out(text: str) -> str:
    return "".join(c for c in text if unicodedata.category(c) != "Sc")
