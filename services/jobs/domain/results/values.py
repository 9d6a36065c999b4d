"""What a stored value may be, whoever writes it: a user's correction or a worker's report.

One check for both, so a value an extractor may store is always one a user may type back
(core/limits.py MAX_VALUE_CHARS), and a result row never holds a document, a list or an
object (one of 500,000 numbers was stored, and every page of results carried it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from bytereview.core.datatypes import BY_ID
from bytereview.core.errors import InvalidArgument
from bytereview.core.limits import MAX_FIELD_NAME, MAX_FIELDS, MAX_PATH, MAX_VALUE_CHARS
from bytereview.values.typed import InvalidValue, JsonValue, normalise

# Types whose dates are written in either order: 03/08/2014 is refused, not guessed.
EITHER_ORDER = frozenset({"date", "date_ymd"})


def check_value(field: str, value: object, *, where: str = "values") -> None:
    """InvalidArgument unless `value` is null, a boolean, a finite number or a string of at
    most MAX_VALUE_CHARS characters. NaN and Infinity are not JSON: PostgreSQL's json column
    refused them, an INTERNAL error."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise InvalidArgument(f"{where}.{field} must be a finite number, not {value}")
        return
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            raise InvalidArgument(f"{where}.{field} must be at most {MAX_VALUE_CHARS} characters")
        return
    raise InvalidArgument(
        f"{where}.{field} must be a string, a number, a boolean or null, not a "
        f"{'list' if isinstance(value, list) else 'object'}"
    )


def check_reported(values: Mapping[str, object], sources: Mapping[str, str], *, where: str) -> None:
    """A worker's values and their sources, within what a job can ask for: at most
    MAX_FIELDS fields, names of at most MAX_FIELD_NAME characters, each value as
    `check_value` wants it. A worker's report past them is refused whole, nothing of it
    stored (a stolen worker token must not fill the database), and its task fails saying
    why (tasks/refusals.py); the extract worker bounds a model's answer before reporting it
    (services/extract/bounds.py), so an honest report always passes."""
    for label, mapping in (("values", values), ("value_sources", sources)):
        if len(mapping) > MAX_FIELDS:
            raise InvalidArgument(f"{where}.{label} has more than {MAX_FIELDS} fields")
        for name in mapping:
            if len(name) > MAX_FIELD_NAME:
                raise InvalidArgument(
                    f"{where}.{label} names a field longer than {MAX_FIELD_NAME} characters"
                )
    for name, value in values.items():
        check_value(name, value, where=f"{where}.values")
    for name, source in sources.items():
        # A file's resource name, `jobs/{job}/files/{file}`.
        if not isinstance(source, str) or len(source) > MAX_PATH:
            raise InvalidArgument(f"{where}.value_sources.{name} is not a file's name")


def as_typed(field: str, data_type: str, value: object) -> object:
    """A user's value for a field of `data_type` in the form an extractor stores it
    ("1,234.50" as "1234.50", "3 Aug 2014" as "2014-08-03"); free text as given but for the
    spaces around it; null as given.
    InvalidArgument naming the field when the value cannot be read as its type, or is a date
    whose order only the user knows: a corrected total was exported as text in a column of
    numbers. A date must be all of the value: `13/13/2018` was stored as 2018-03-13, read as
    a document's date glued to a digit."""
    kind = BY_ID.get(data_type)
    if kind is not None and kind.free_text and isinstance(value, str):
        # As written, but for the spaces around it: a stray space typed at the end went into
        # every export, where the table hid it and a spreadsheet's lookup missed it.
        return value.strip()
    if value is None or kind is None:
        return value
    where = f"values.{field} ({kind.display_name} field)"
    if kind.free_text:
        # Text is sent as a string. A JSON number or boolean was stored as given, and came
        # out of the exports as `42.0` and `True`; an invoice number sent as a number has
        # already lost its leading zeros, and past 2^53 its digits (a Struct holds doubles).
        what = "a boolean" if isinstance(value, bool) else "a number"
        raise InvalidArgument(f"{where}: {value!r} is {what}, not text; send it as a string")
    try:
        typed: JsonValue = normalise(value, data_type, whole=True)
    except InvalidValue as exc:
        raise InvalidArgument(f"{where}: {exc}; correct it or clear it") from None
    if data_type in EITHER_ORDER and isinstance(value, str):
        try:
            other = normalise(value, data_type, day_first=False, whole=True)
        except InvalidValue:
            other = typed
        if other != typed:
            raise InvalidArgument(
                f"{where}: {value!r} could be {typed} or {other}; write it as YYYY-MM-DD"
            )
    return typed
