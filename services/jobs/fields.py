"""Validation of field lists, shared by templates and job configuration."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import InvalidArgument
from services.jobs import models

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_FIELDS = 100
MAX_INSTRUCTION = 2000


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    data_type: str
    instruction: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "data_type": self.data_type, "instruction": self.instruction}


async def validate_fields(
    session: AsyncSession, fields: Iterable[FieldSpec], *, what: str = "fields"
) -> list[FieldSpec]:
    """The fields, checked: names well-formed and unique, data types known, sizes bounded."""
    checked = list(fields)
    if not checked:
        raise InvalidArgument(f"{what} must not be empty")
    if len(checked) > MAX_FIELDS:
        raise InvalidArgument(f"{what} holds {len(checked)} fields; at most {MAX_FIELDS}")
    known = set((await session.scalars(select(models.DataType.id))).all())
    seen: set[str] = set()
    for i, field in enumerate(checked):
        where = f"{what}[{i}]"
        if not field.name:
            raise InvalidArgument(f"{where}.name must not be empty")
        if not FIELD_NAME.match(field.name):
            raise InvalidArgument(
                f"{where}.name {field.name!r} must start with a letter or _ and hold only "
                "letters, digits and _ (at most 64)"
            )
        if field.name.lower() in seen:
            raise InvalidArgument(f"{where}.name {field.name!r} is used twice")
        seen.add(field.name.lower())
        if field.data_type not in known:
            raise InvalidArgument(
                f"{where}.data_type {field.data_type!r} is unknown; "
                f"one of: {', '.join(sorted(known))}"
            )
        if len(field.instruction) > MAX_INSTRUCTION:
            raise InvalidArgument(
                f"{where}.instruction is longer than {MAX_INSTRUCTION} characters"
            )
    return checked


def from_dicts(rows: Sequence[dict[str, str]]) -> list[FieldSpec]:
    return [FieldSpec(r["name"], r["data_type"], r.get("instruction", "")) for r in rows]
