"""A field to extract, and the one validation every field list goes through.

Job configuration, templates and the extractor's preview all call `check_fields`, so a
field one of them refuses is refused by all.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from bytereview.core.errors import InvalidArgument
from bytereview.core.limits import MAX_FIELD_NAME, MAX_FIELDS, MAX_INSTRUCTION

FIELD_NAME = re.compile(rf"^[A-Za-z_][A-Za-z0-9_]{{0,{MAX_FIELD_NAME - 1}}}$")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    data_type: str
    instruction: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "data_type": self.data_type, "instruction": self.instruction}


def field_spec(name: str, data_type: str, instruction: str) -> FieldSpec:
    """A field as a caller sent it, with stray spaces around name and type removed."""
    return FieldSpec(name.strip(), data_type.strip(), instruction)


def check_fields(
    fields: Iterable[FieldSpec], known_types: Collection[str], *, what: str = "fields"
) -> list[FieldSpec]:
    """The fields, checked: names well-formed and unique, data types known, sizes bounded."""
    checked = list(fields)
    if not checked:
        raise InvalidArgument(f"{what} must not be empty")
    if len(checked) > MAX_FIELDS:
        raise InvalidArgument(f"{what} holds {len(checked)} fields; at most {MAX_FIELDS}")
    seen: set[str] = set()
    for i, field in enumerate(checked):
        where = f"{what}[{i}]"
        if not field.name:
            raise InvalidArgument(f"{where}.name must not be empty")
        if not FIELD_NAME.match(field.name):
            raise InvalidArgument(
                f"{where}.name {field.name!r} must start with a letter or _ and hold only "
                f"letters, digits and _ (at most {MAX_FIELD_NAME})"
            )
        if field.name.lower() in seen:
            raise InvalidArgument(f"{where}.name {field.name!r} is used twice")
        seen.add(field.name.lower())
        if field.data_type not in known_types:
            raise InvalidArgument(
                f"{where}.data_type {field.data_type!r} is unknown; "
                f"one of: {', '.join(sorted(known_types))}"
            )
        if len(field.instruction) > MAX_INSTRUCTION:
            raise InvalidArgument(
                f"{where}.instruction is longer than {MAX_INSTRUCTION} characters"
            )
    return checked
