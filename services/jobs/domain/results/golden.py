"""Golden documents: results a person checked, kept as a template's expected answers."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import AlreadyExists, NotFound
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext, owned_job
from services.jobs.domain.events import record_event
from services.jobs.domain.pages.keyset import Keyset, page_of, read_page
from services.jobs.domain.queries import codec_of
from services.jobs.domain.results.versions import result_of
from services.jobs.store import models


async def _owned_template(session: AsyncSession, user_id: str, template_id: str) -> models.Template:
    template = await session.scalar(
        select(models.Template).where(
            models.Template.id == template_id, models.Template.user_id == user_id
        )
    )
    if template is None:
        raise NotFound(f"template {names.template_name(template_id)} not found")
    return template


class GoldenDocuments:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def create(
        self, *, user_id: str, actor: str, template_id: str, job_id: str, result_id: str
    ) -> tuple[models.GoldenDocument, list[str]]:
        """Mark the result golden for the template: its current values become the expected
        answer for its files. Both must be the caller's (NOT_FOUND otherwise, alike)."""

        async def work(session: AsyncSession) -> tuple[models.GoldenDocument, list[str]]:
            await _owned_template(session, user_id, template_id)
            job = await owned_job(session, user_id, job_id, lock=True)
            result = await result_of(session, job_id, result_id)
            golden = models.GoldenDocument(
                template_id=template_id,
                result_id=result_id,
                job_id=job_id,
                values=dict(result.values),
                actor=actor,
            )
            session.add(golden)
            await session.flush()
            record_event(
                session,
                job,
                kind="result.golden",
                actor=actor,
                subject=names.result_name(job_id, result_id),
                message=f"golden for {names.template_name(template_id)} at v{result.version}",
            )
            paths = await _paths(session, [golden])
            return golden, paths.get(golden.id, [])

        try:
            # Locks the job's row (for its event): run again if PostgreSQL aborts it in a
            # lock cycle.
            return await self._ctx.run_transaction(work)
        except IntegrityError as exc:
            raise AlreadyExists(
                f"{names.result_name(job_id, result_id)} is already golden for this template"
            ) from exc

    async def list_golden(
        self, user_id: str, template_id: str, page_size: int, page_token: str
    ) -> tuple[list[tuple[models.GoldenDocument, list[str]]], str]:
        size = names.page_size(page_size)
        scope = f"golden:{template_id}"
        codec = codec_of(self._ctx)
        order = Keyset((models.GoldenDocument.created_at, models.GoldenDocument.id))
        key = codec.decode(page_token, scope)
        async with self._ctx.reading() as session:
            await _owned_template(session, user_id, template_id)
            rows = await read_page(
                session,
                select(models.GoldenDocument)
                .where(models.GoldenDocument.template_id == template_id, *order.after(key))
                .order_by(*order.order_by())
                .limit(size + 1),
            )
            page, token = page_of(
                rows, size, codec=codec, scope=scope, key_of=lambda g: (g.created_at, g.id)
            )
            paths = await _paths(session, page)
        return [(r, paths.get(r.id, [])) for r in page], token

    async def delete(self, user_id: str, template_id: str, golden_id: str) -> None:
        async with self._ctx.transaction() as session:
            await _owned_template(session, user_id, template_id)
            # Locked, as a template's delete (templates/library.py) and for the same race.
            golden = await session.scalar(
                select(models.GoldenDocument)
                .where(
                    models.GoldenDocument.id == golden_id,
                    models.GoldenDocument.template_id == template_id,
                )
                .with_for_update()
            )
            if golden is None:
                raise NotFound(f"{names.golden_document_name(template_id, golden_id)} not found")
            await session.delete(golden)


async def _paths(
    session: AsyncSession, rows: Sequence[models.GoldenDocument]
) -> dict[str, list[str]]:
    """Per golden document, the original paths of its result's files, in order."""
    by_result = {r.result_id: r.id for r in rows}
    out: dict[str, list[str]] = {r.id: [] for r in rows}
    if not by_result:
        return out
    for result_id, path in await session.execute(
        select(models.Result.id, models.SourceFile.original_path)
        .join(models.TaskFile, models.TaskFile.task_id == models.Result.task_id)
        .join(models.SourceFile, models.SourceFile.id == models.TaskFile.file_id)
        .where(models.Result.id.in_(by_result))
        .order_by(models.Result.id, models.TaskFile.position)
    ):
        out[by_result[result_id]].append(path)
    return out
