"""JSON schema from a job's fields and data types, and the extracted values normalised.

The same schema asks the model for structured output and checks what comes back;
`normalise_all` turns whatever an extractor found into each field's canonical form
(bytereview/values/typed.py, which a user's correction goes through too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bytereview.core.datatypes import DATA_TYPES
from bytereview.values.typed import InvalidValue, JsonValue, normalise


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    data_type: str
    instruction: str = ""


@dataclass(frozen=True, slots=True)
class TypeInfo:
    json_type: str
    format: str = ""
    description: str = ""


# Used when a data type row is not supplied (preview): the shared table the jobs service
# seeds its rows from.
DEFAULT_TYPES: Mapping[str, TypeInfo] = {t.id: TypeInfo(t.json_type, t.format) for t in DATA_TYPES}

# Money is asked for as a decimal string: a JSON number cannot say that the document printed
# `30.90` rather than `30.9`, and the result (and every export) keeps the printed decimals.
AMOUNT_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
_AMOUNT_DESCRIPTION = (
    " (an amount as a string of digits with a point before the decimals, exactly as many"
    " decimals as the document prints, e.g. 30.90 or 1234.50; no currency symbol or"
    " thousands separator)"
)


def json_schema(fields: Sequence[Field], types: Mapping[str, TypeInfo]) -> dict[str, Any]:
    """An object schema with one nullable property per field."""
    properties: dict[str, Any] = {}
    for f in fields:
        info = types.get(f.data_type) or DEFAULT_TYPES.get(f.data_type) or TypeInfo("string")
        description = f.instruction or f.name.replace("_", " ")
        if f.data_type == "currency":
            # Whatever the type row says (its json_type is `number` for the API's clients).
            properties[f.name] = {
                "type": ["string", "null"],
                "pattern": AMOUNT_PATTERN,
                "description": description + _AMOUNT_DESCRIPTION,
            }
            continue
        prop: dict[str, Any] = {"type": [info.json_type, "null"]}
        if info.format:
            prop["format"] = info.format
            description += f" (format: {info.format})"
        prop["description"] = description
        properties[f.name] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": [f.name for f in fields],
        "additionalProperties": False,
    }


def normalise_all(
    values: Mapping[str, Any], fields: Sequence[Field]
) -> tuple[dict[str, JsonValue], dict[str, str]]:
    """(normalised values, problems): unreadable values become None with a note."""
    out: dict[str, JsonValue] = {}
    problems: dict[str, str] = {}
    for f in fields:
        try:
            out[f.name] = normalise(values.get(f.name), f.data_type)
        except InvalidValue as exc:
            out[f.name] = None
            problems[f.name] = str(exc)
    return out, problems
