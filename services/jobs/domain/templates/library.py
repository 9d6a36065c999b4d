"""Templates (reusable field sets), data types and system prompts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import AlreadyExists, InvalidArgument, NotFound
from bytereview.core.limits import MAX_DESCRIPTION, MAX_DISPLAY_NAME, check_length
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext
from services.jobs.domain.fields import FieldSpec, validate_fields
from services.jobs.domain.pages.keyset import Keyset, page_of, read_page
from services.jobs.domain.queries import codec_of
from services.jobs.domain.results.scoring import start_scoring
from services.jobs.domain.templates.versions import add_template_version
from services.jobs.store import models

UPDATABLE = frozenset({"display_name", "description", "fields"})


def _check_display_name(display_name: str) -> str:
    display_name = display_name.strip()
    if not display_name:
        raise InvalidArgument("template.display_name must not be empty")
    return check_length(display_name, MAX_DISPLAY_NAME, field="template.display_name")


class Templates:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def create(
        self, user_id: str, display_name: str, description: str, fields: Sequence[FieldSpec]
    ) -> models.Template:
        display_name = _check_display_name(display_name)
        check_length(description, MAX_DESCRIPTION, field="template.description")
        try:
            async with self._ctx.transaction() as session:
                checked = await validate_fields(session, fields, what="template.fields")
                template = models.Template(
                    user_id=user_id, display_name=display_name, description=description
                )
                template.fields = [
                    models.TemplateField(
                        position=i, name=f.name, data_type_id=f.data_type, instruction=f.instruction
                    )
                    for i, f in enumerate(checked)
                ]
                session.add(template)
                await session.flush()
                add_template_version(session, template, checked, version=1)
        except IntegrityError as exc:
            raise AlreadyExists(f"you already have a template named {display_name!r}") from exc
        return template

    async def get(self, user_id: str, template_id: str) -> models.Template:
        async with self._ctx.reading() as session:
            template = await session.scalar(
                select(models.Template).where(
                    models.Template.id == template_id, models.Template.user_id == user_id
                )
            )
        if template is None:
            raise NotFound(f"template {names.template_name(template_id)} not found")
        return template

    async def list_templates(
        self, user_id: str, page_size: int, page_token: str
    ) -> tuple[Sequence[models.Template], str]:
        size = names.page_size(page_size)
        scope = f"templates:{user_id}"
        codec = codec_of(self._ctx)
        order = Keyset((models.Template.display_name, models.Template.id))
        key = codec.decode(page_token, scope)
        async with self._ctx.reading() as session:
            rows = await read_page(
                session,
                select(models.Template)
                .where(models.Template.user_id == user_id, *order.after(key))
                .order_by(*order.order_by())
                .limit(size + 1),
            )
        return page_of(
            rows, size, codec=codec, scope=scope, key_of=lambda t: (t.display_name, t.id)
        )

    async def update(
        self,
        user_id: str,
        template_id: str,
        paths: Sequence[str],
        display_name: str,
        description: str,
        fields: Sequence[FieldSpec],
        *,
        score_new_version: bool = False,
        actor: str = "",
    ) -> models.Template:
        """The template with the masked fields changed. New fields make a new version; with
        `score_new_version` its scoring run is queued in the same transaction, so a template
        that cannot be scored (no golden documents) is left unchanged: the FAILED_PRECONDITION
        used to come after the new version was committed."""
        unknown = set(paths) - UPDATABLE
        if unknown:
            raise InvalidArgument(
                f"update_mask names fields that cannot be updated: {sorted(unknown)}"
            )
        targets = set(paths) or UPDATABLE
        if "description" in targets:
            check_length(description, MAX_DESCRIPTION, field="template.description")
        try:
            async with self._ctx.transaction() as session:
                template = await session.scalar(
                    select(models.Template)
                    .where(models.Template.id == template_id, models.Template.user_id == user_id)
                    .with_for_update()
                )
                if template is None:
                    raise NotFound(f"template {names.template_name(template_id)} not found")
                if "display_name" in targets:
                    template.display_name = _check_display_name(display_name)
                if "description" in targets:
                    template.description = description
                if "fields" in targets:
                    checked = await validate_fields(session, fields, what="template.fields")
                    current = [
                        FieldSpec(f.name, f.data_type_id, f.instruction) for f in template.fields
                    ]
                    if list(checked) != current:
                        # Saving new fields makes a new version; jobs keep the one they used.
                        template.version += 1
                        add_template_version(session, template, checked, version=template.version)
                    template.fields.clear()
                    await session.flush()
                    template.fields.extend(
                        models.TemplateField(
                            position=i,
                            name=f.name,
                            data_type_id=f.data_type,
                            instruction=f.instruction,
                        )
                        for i, f in enumerate(checked)
                    )
                    if score_new_version and list(checked) != current:
                        await start_scoring(
                            session,
                            user_id=user_id,
                            actor=actor,
                            template_id=template_id,
                            version=template.version,
                        )
                template.updated_at = models.utcnow()
        except IntegrityError as exc:
            raise AlreadyExists(f"you already have a template named {display_name!r}") from exc
        return template

    async def delete(self, user_id: str, template_id: str) -> None:
        async def work(session: AsyncSession) -> None:
            # Locked: of two deletes at once, the second waits and finds nothing (NOT_FOUND);
            # unlocked, both read the row and the second's DELETE matched none (INTERNAL).
            template = await session.scalar(
                select(models.Template)
                .where(models.Template.id == template_id, models.Template.user_id == user_id)
                .with_for_update()
            )
            if template is None:
                raise NotFound(f"template {names.template_name(template_id)} not found")
            # Jobs keep their own copy of the fields; their template link is cleared (SET NULL).
            await session.delete(template)

        # Clearing the link writes (and locks) the row of every job made from the template,
        # in no order of ours: a lock cycle with a report or command on two of those jobs
        # is possible, and PostgreSQL then aborts this, which runs again.
        await self._ctx.run_transaction(work)

    async def data_types(self) -> Sequence[models.DataType]:
        async with self._ctx.reading() as session:
            # A type added in a later release is seeded at its place in the table, which an
            # older database may already use: ties go by id ("date" before "date_mdy").
            ordered = select(models.DataType).order_by(models.DataType.position, models.DataType.id)
            return (await session.scalars(ordered)).all()

    async def system_prompts(self) -> Sequence[models.SystemPrompt]:
        async with self._ctx.reading() as session:
            return (
                await session.scalars(
                    select(models.SystemPrompt).order_by(models.SystemPrompt.version.desc())
                )
            ).all()

    async def count(self, user_id: str) -> int:
        async with self._ctx.reading() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(models.Template)
                    .where(models.Template.user_id == user_id)
                )
                or 0
            )
