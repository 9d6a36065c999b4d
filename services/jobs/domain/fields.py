"""Field lists of jobs and templates: checked by the shared rule against the stored types."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.fields import FieldSpec, check_fields
from services.jobs.store import models

__all__ = ["FieldSpec", "from_dicts", "job_fields", "validate_fields"]


async def validate_fields(
    session: AsyncSession, fields: Iterable[FieldSpec], *, what: str = "fields"
) -> list[FieldSpec]:
    """The fields, checked by `bytereview.core.fields.check_fields`. The known data types are
    the stored rows (seeded from `bytereview.core.datatypes`; an admin may add more)."""
    known = set((await session.scalars(select(models.DataType.id))).all())
    return check_fields(fields, known, what=what)


def from_dicts(rows: Sequence[dict[str, str]]) -> list[FieldSpec]:
    return [FieldSpec(r["name"], r["data_type"], r.get("instruction", "")) for r in rows]


async def job_fields(session: AsyncSession, job_id: str) -> list[models.JobField]:
    """The job's fields in their order."""
    query = (
        select(models.JobField)
        .where(models.JobField.job_id == job_id)
        .order_by(models.JobField.position)
    )
    return list((await session.scalars(query)).all())
