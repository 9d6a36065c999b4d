"""A value in its data type's canonical form, whoever wrote it.

An extractor's answer (services/extract/schema.normalise_all) and a user's correction
(services/jobs/domain/results/corrections.py) go through the same reading, so a corrected
total is stored as an extracted one is ("1,234.50" as "1234.50") and exports line up.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from bytereview.values.amounts import amount_text, first_number, not_one_number
from bytereview.values.dates import find_date

JsonValue = str | int | float | bool | None

_DATE_FORMATS = {"date_mdy": "%m/%d/%Y", "date_dmy": "%d/%m/%Y", "date_ymd": "%Y-%m-%d"}
# How each date type's values are stored (strftime): a plain `date` as ISO 8601.
STORED_DATES = {"date": "%Y-%m-%d", **_DATE_FORMATS}


class InvalidValue(ValueError):
    """A value that cannot be read as its field's data type."""


def parse_number(text: str) -> float:
    """A number from text such as '1,234.50', '1.234,50', '(12.00)', 'RM 7.90'."""
    found = first_number(text)
    if found is None:
        raise InvalidValue(f"no number in {text!r}")
    return float(found.value)


def parse_date(text: str, *, day_first: bool = True, whole: bool = False) -> dt.date:
    """The first date in `text` (with `whole`, `text` itself as a date). Ambiguous a/b/y
    dates follow `day_first`."""
    found = find_date(text, day_first=day_first, whole=whole)
    if found is None:
        raise InvalidValue(f"{text!r} is not a date" if whole else f"no date in {text!r}")
    return found


# A number in E notation, as a model (not a document) writes one: `1.5e3`, `1e400`.
_SCIENTIFIC = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_NUMERIC_TYPES = ("number", "currency", "percentage", "integer")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")
_TIME = re.compile(r"\b(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?\s*(?P<ampm>[AaPp][Mm])?")


def _iso_date(text: str) -> dt.date:
    """A YYYY-MM-DD date; InvalidValue for one no calendar has (`2018-13-01`, `2018-02-30`):
    a correction typed so was an internal error."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidValue(f"{text!r} is not a date on the calendar") from None


def normalise(
    value: Any, data_type: str, *, day_first: bool = True, whole: bool = False
) -> JsonValue:
    """`value` in the canonical form of `data_type`; None stays None. Raises InvalidValue.
    With `whole`, a date or a number must be all of `value`, not found inside it (a person's
    typing, where a document's text holds them among other words)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    typed_whole = whole and data_type in _NUMERIC_TYPES and isinstance(value, str)
    if typed_whole and (why := not_one_number(str(value))):
        raise InvalidValue(f"{value!r} {why}")
    if (
        data_type in _NUMERIC_TYPES
        and isinstance(value, str)
        and _SCIENTIFIC.fullmatch(value.strip())
    ):
        # Read whole: as text its first number is the mantissa ('1e400' read as 1).
        value = float(value.strip())
    if isinstance(value, float) and not math.isfinite(value):
        # A model's JSON may say 1e400 (read as infinity) or NaN: no field holds either, and
        # the jobs service refuses them (they are not JSON), which failed the whole report
        # batch (for an integer, int() raised OverflowError: an internal error).
        raise InvalidValue(f"{value} is not a number a document holds")
    if data_type in ("number", "currency", "percentage"):
        if isinstance(value, bool):
            raise InvalidValue("expected a number, got a boolean")
        if data_type == "currency":
            # Money keeps the decimals the document printed ("30.90"): a decimal string.
            amount = amount_text(value)
            if amount is None:
                raise InvalidValue(f"no amount in {value!r}")
            return amount
        return float(value) if isinstance(value, (int, float)) else parse_number(str(value))
    if data_type == "integer":
        if isinstance(value, bool):
            raise InvalidValue("expected an integer, got a boolean")
        number = float(value) if isinstance(value, (int, float)) else parse_number(str(value))
        if number != int(number):
            raise InvalidValue(f"{value!r} is not a whole number")
        return int(number)
    if data_type == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "y", "1", "x", "checked", "paid"):
            return True
        if text in ("false", "no", "n", "0", "", "unchecked", "unpaid"):
            return False
        raise InvalidValue(f"{value!r} is not yes or no")
    text = " ".join(str(value).split())
    if data_type == "date":
        # ISO 8601 whatever the document's order; an ambiguous 03/08/2014 follows
        # `day_first`, which the caller reads from the document (dates.day_first_in).
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            return _iso_date(value.strip()).isoformat()
        return parse_date(text, day_first=day_first, whole=whole).isoformat()
    if data_type in _DATE_FORMATS:
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            parsed = _iso_date(value.strip())
        else:
            parsed = parse_date(text, day_first=data_type != "date_mdy" and day_first, whole=whole)
        return parsed.strftime(_DATE_FORMATS[data_type])
    if data_type == "email":
        match = _EMAIL.search(text)
        if match is None:
            raise InvalidValue(f"{value!r} is not an email address")
        return match.group(0).lower()
    if data_type == "url":
        match = _URL.search(text)
        if match is None:
            raise InvalidValue(f"{value!r} is not a URL")
        return match.group(0).rstrip(".,;)")
    if data_type == "phone":
        match = _PHONE.search(text)
        if match is None:
            raise InvalidValue(f"{value!r} is not a phone number")
        raw = match.group(0)
        return ("+" if raw.startswith("+") else "") + re.sub(r"\D", "", raw)
    if data_type == "time":
        match = _TIME.search(text)
        if match is None:
            raise InvalidValue(f"{value!r} is not a time")
        hour, minute = int(match["h"]), int(match["m"])
        if match["ampm"]:
            hour = hour % 12 + (12 if match["ampm"].lower() == "pm" else 0)
        if hour > 23 or minute > 59:
            raise InvalidValue(f"{value!r} is not a time of day")
        return f"{hour:02d}:{minute:02d}" + (f":{match['s']}" if match["s"] else "")
    return text
