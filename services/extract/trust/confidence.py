"""Confidence per value: the probability that the value is right.

"Right" means what the shared scorer calls a match (business-level: case, spacing and
punctuation aside; dates as dates; amounts as decimals), and an empty value is right only
when the document has no such value. The probability comes from a logistic model over a
few signals the platform sees for every value (its kind, the rule or model that found it,
whether its quote was verified in the document, whether the value is printed more than
once, its shape, how many of its words no other document prints), fitted by
`bench/fit_confidence.py` on the shared labelled receipts' training split and stored beside
this module as `calibration.json`; the reliability table on the held-out split is in
docs/benchmarks.md (`bench/trust_calibration.py`).

Gemini's values are scored with the same model under the `model` method, whose weight was
not fitted (no Gemini answers in the labelled set): it is set so that a verified model
value counts as a verified labelled one. That is a prior, and the docs say so.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from bytereview.values.typed import JsonValue
from services.extract.schema import Field
from services.extract.trust.evidence import DATE_TYPES, NUMERIC_TYPES, Check
from services.extract.trust.vocabulary import known_words, unfamiliar

CALIBRATION = Path(__file__).with_name("calibration.json")
METHODS = ("layout", "label", "first_date", "anywhere", "model")
_LEGAL_FORM = re.compile(
    r"(?i)\b(sdn\.?\s*bhd|bhd|s/b|ltd|limited|inc|llc|llp|gmbh|plc|corp|corporation|"
    r"enterprise|trading|ag|bv|sarl|s\.?a\.?)\b"
)


def kind(field: Field) -> str:
    """The field's kind for calibration: money, date, address, organisation or text."""
    words = set(re.findall(r"[a-z]+", f"{field.name} {field.instruction}".lower()))
    if field.data_type in NUMERIC_TYPES:
        return "amount"
    if field.data_type in DATE_TYPES:
        return "date"
    if field.data_type == "address" or "address" in words:
        return "address"
    if words & {"company", "vendor", "issuer", "merchant", "seller", "supplier", "store"}:
        return "organisation"
    return "text"


# A lower-case letter followed by a capital inside a word (`SdN`, `MaRT`): OCR's trace.
_ODD_CASE = re.compile(r"[a-z][A-Z]")
# Words OCR mangled: a digit glued to lower-case letters (`Leve1`, `Uptown3`; not `3rd`),
# odd case, or a character no address or name is printed with (`Leve1°6`).
_MISREAD = re.compile(
    r"[a-z]{2}[0-9]|[0-9](?!(?:st|nd|rd|th)\b)[a-z]{2,}|[a-z][A-Z]|[^\w\s,.\-/&'()#:@+]"
)
# OCR's scores on clean print sit above 0.95; a shortfall of DOUBT_SPAN counts fully.
DOUBT_SPAN = 0.25


def ocr_doubt(score: float) -> float:
    """How far below certain OCR was, in [0, 1]: 0 for a run read at 1.0, 1 at or below
    1 - DOUBT_SPAN."""
    return min(1.0, max(0.0, (1.0 - score) / DOUBT_SPAN))


@dataclass(frozen=True, slots=True)
class Signals:
    """What confidence is computed from, for one value."""

    kind: str
    method: str
    empty: bool
    quote_found: bool
    holds: float
    repeated: bool
    value: str
    # OCR's lowest recognition score over the quote's runs (None: not OCR, or no quote).
    ocr_min: float | None = None
    # The share of the value's words no training document prints twice (names, addresses).
    unfamiliar: float = 0.0
    # OCR's expected number of misread characters in the quote (None: not OCR, or no quote).
    ocr_misreads: float | None = None

    def features(self) -> dict[str, float]:
        """Named features, 1.0/0.0 mostly; absent ones are 0."""
        out = {"bias": 1.0, f"kind:{self.kind}": 1.0}
        if self.empty:
            out["empty"] = 1.0
            out[f"empty:{self.kind}"] = 1.0
            return out
        out[f"method:{self.method}"] = 1.0
        out["verified"] = float(self.quote_found and self.holds > 0)
        out["exact"] = float(self.holds >= 1.0)
        out["repeated"] = float(self.repeated)
        out[f"repeated:{self.kind}"] = float(self.repeated)
        tokens = self.value.split()
        if self.ocr_min is not None:
            # A misread name scores like a right one on every other signal; OCR's own doubt
            # about the runs it was read from is what tells them apart.
            doubt = ocr_doubt(self.ocr_min)
            out["ocr:doubt"] = doubt
            out[f"ocr:doubt:{self.kind}"] = doubt
        if self.ocr_misreads is not None:
            # One character wrong makes the value wrong: a long address read at 0.93 holds
            # more misreads than a short name read at 0.90, which the lowest score misses.
            out["ocr:misreads"] = self.ocr_misreads
        if self.kind == "organisation":
            out["organisation:legal_form"] = float(bool(_LEGAL_FORM.search(self.value)))
            out["organisation:short"] = float(len(tokens) <= 1)
            out["organisation:digits"] = float(any(c.isdigit() for c in self.value))
            out["organisation:odd_case"] = float(bool(_ODD_CASE.search(self.value)))
        if self.kind in ("organisation", "address"):
            out[f"misread:{self.kind}"] = float(bool(_MISREAD.search(self.value)))
            # OCR sure of a wrong word (`STATONERY`): a word other documents do not print.
            out[f"unfamiliar:{self.kind}"] = self.unfamiliar
        if self.kind == "address":
            out["address:short"] = float(len(tokens) < 5)
            out["address:postcode"] = float(bool(re.search(r"\b\d{5}\b", self.value)))
        if self.kind == "amount":
            out["amount:integer"] = float("." not in self.value and "," not in self.value)
            # A total of nothing is a misread one (`6-00` read as 0) far more often than a
            # free receipt.
            out["amount:zero"] = float(_is_zero(self.value))
        return out


def _is_zero(value: str) -> bool:
    try:
        return Decimal(value) == 0
    except InvalidOperation:
        return False


def signals(field: Field, value: JsonValue, method: str, check: Check, repeats: int) -> Signals:
    text = "" if value is None else str(value)
    found_kind = kind(field)
    return Signals(
        kind=found_kind,
        method=method if method in METHODS else "model",
        empty=value is None,
        quote_found=check.quote_found,
        holds=check.holds,
        repeated=repeats >= 2,
        value=text,
        ocr_min=check.ocr_min,
        ocr_misreads=check.ocr_misreads,
        unfamiliar=(
            unfamiliar(text, known_words()) if found_kind in ("organisation", "address") else 0.0
        ),
    )


@functools.cache
def _weights(path: Path = CALIBRATION) -> Mapping[str, float]:
    loaded = json.loads(path.read_text())
    weights: dict[str, float] = loaded["weights"]
    return weights


def confidence(found: Signals, weights: Mapping[str, float] | None = None) -> float:
    """P(value is right) under the fitted model, in [0.001, 0.999], rounded to 3 places."""
    weights = _weights() if weights is None else weights
    z = sum(weights.get(name, 0.0) * x for name, x in found.features().items())
    # Never a certainty: a value at 1.0 would escape every review threshold.
    return min(0.999, max(0.001, round(1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z)))), 3)))


def review_threshold(path: Path = CALIBRATION) -> float:
    """The confidence under which a value needs review, chosen by the fit to flag at most
    a fifth of the training values."""
    return float(json.loads(path.read_text())["review_threshold"])
