"""Template versions: every saved set of a template's fields, kept; jobs record the one they
used, and each version carries its latest golden-set score (domain/results/scoring.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import FailedPrecondition, NotFound
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext
from services.jobs.domain.fields import FieldSpec, from_dicts
from services.jobs.domain.pages.keyset import Keyset, page_of
from services.jobs.domain.queries import codec_of
from services.jobs.store import models


def add_template_version(
    session: AsyncSession, template: models.Template, fields: Sequence[FieldSpec], *, version: int
) -> models.TemplateVersion:
    row = models.TemplateVersion(
        template_id=template.id, version=version, fields=[f.as_dict() for f in fields]
    )
    session.add(row)
    return row


async def owned_version(
    session: AsyncSession, user_id: str, template_id: str, version: int, *, lock: bool = False
) -> tuple[models.Template, models.TemplateVersion]:
    """The template and its version if the caller owns the template; NOT_FOUND alike for a
    missing one and another user's."""
    query = select(models.Template).where(
        models.Template.id == template_id, models.Template.user_id == user_id
    )
    template = await session.scalar(query.with_for_update() if lock else query)
    row = await session.get(models.TemplateVersion, (template_id, version)) if template else None
    if template is None or row is None:
        raise NotFound(f"{names.template_version_name(template_id, version)} not found")
    return template, row


@dataclass(frozen=True, slots=True)
class FieldComparison:
    field: str
    base: FieldSpec | None
    current: FieldSpec | None
    base_accuracy: float | None
    accuracy: float | None


@dataclass(frozen=True, slots=True)
class Comparison:
    base: models.TemplateVersion
    version: models.TemplateVersion
    fields: list[FieldComparison]


def field_accuracy(row: models.TemplateVersion, field: str) -> float | None:
    if row.score_state != "SUCCEEDED":
        return None
    compared, correct = row.score_fields.get(field, (0, 0))
    return correct / compared if compared else None


class TemplateVersions:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def list_versions(
        self, user_id: str, template_id: str, page_size: int, page_token: str
    ) -> tuple[Sequence[models.TemplateVersion], str]:
        size = names.page_size(page_size)
        scope = f"template-versions:{template_id}"
        codec = codec_of(self._ctx)
        order = Keyset((models.TemplateVersion.version,), descending=True)
        key = codec.decode(page_token, scope)
        async with self._ctx.reading() as session:
            template = await session.scalar(
                select(models.Template).where(
                    models.Template.id == template_id, models.Template.user_id == user_id
                )
            )
            if template is None:
                raise NotFound(f"template {names.template_name(template_id)} not found")
            rows = (
                await session.scalars(
                    select(models.TemplateVersion)
                    .where(models.TemplateVersion.template_id == template_id, *order.after(key))
                    .order_by(*order.order_by())
                    .limit(size + 1)
                )
            ).all()
        return page_of(rows, size, codec=codec, scope=scope, key_of=lambda v: (v.version,))

    async def get(self, user_id: str, template_id: str, version: int) -> models.TemplateVersion:
        async with self._ctx.reading() as session:
            _, row = await owned_version(session, user_id, template_id, version)
        return row

    async def compare(
        self, user_id: str, template_id: str, version: int, base_version: int
    ) -> Comparison:
        """Field by field, `version` beside `base_version` (0: the one before it)."""
        async with self._ctx.reading() as session:
            # The version must exist (and be the caller's) before anything is said about it.
            _, current = await owned_version(session, user_id, template_id, version)
            if base_version == 0:
                if version == 1:
                    # Well formed: a template with a second version can be compared.
                    raise FailedPrecondition(
                        "version 1 has no previous version: name a base_version"
                    )
                base_version = version - 1
            _, base = await owned_version(session, user_id, template_id, base_version)
        base_fields = {f.name: f for f in from_dicts(base.fields)}
        fields = {f.name: f for f in from_dicts(current.fields)}
        order = [*fields, *(name for name in base_fields if name not in fields)]
        return Comparison(
            base=base,
            version=current,
            fields=[
                FieldComparison(
                    field=name,
                    base=base_fields.get(name),
                    current=fields.get(name),
                    base_accuracy=field_accuracy(base, name) if name in base_fields else None,
                    accuracy=field_accuracy(current, name) if name in fields else None,
                )
                for name in order
            ],
        )
