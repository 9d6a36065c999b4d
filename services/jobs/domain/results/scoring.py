"""Scoring a template version on its template's golden documents.

A scoring run is a job of its own (`purpose="score"`, not listed with the user's jobs): one
task per golden document, over new file rows that point at the golden files' stored bytes,
with the version's fields. It goes through the normal extract queue and worker, so it has
the same retries, rate limits and outage handling as any job. When the run finishes, each
result is compared with the golden values (snapshot taken at the start) field by field.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import FailedPrecondition
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext
from services.jobs.domain.fields import from_dicts
from services.jobs.domain.status import JOB_FINAL, FileStatus, JobStatus, TaskMode, TaskStatus, move
from services.jobs.domain.templates.versions import owned_version
from services.jobs.domain.work import queue_task
from services.jobs.store import models

SCORE_PURPOSE = "score"
RUNNING, SUCCEEDED, FAILED = "RUNNING", "SUCCEEDED", "FAILED"


def normalised(value: Any) -> str | None:
    """How golden and extracted values are compared: numbers by value (`10.0` = `"10.00"`),
    text case- and space-insensitively; null only equals null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        try:
            return format(Decimal(text).normalize(), "f")
        except InvalidOperation:  # pragma: no cover - the pattern is a valid Decimal
            pass
    return " ".join(text.split()).casefold()


def score_state(row: models.TemplateVersion, job: models.Job | None) -> tuple[str, str]:
    """The score's state and error as a reader sees it: a run whose job was cancelled or
    deleted will never settle, so it reads FAILED."""
    if row.score_state == RUNNING and (job is None or job.status == JobStatus.CANCELLED):
        return FAILED, "the scoring run was cancelled or deleted"
    return row.score_state, row.score_error


class Scoring:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def start(
        self, *, user_id: str, actor: str, template_id: str, version: int
    ) -> models.TemplateVersion:
        async with self._ctx.transaction() as session:
            return await start_scoring(
                session, user_id=user_id, actor=actor, template_id=template_id, version=version
            )

    async def run_job(self, row: models.TemplateVersion) -> models.Job | None:
        if row.score_job_id is None:
            return None
        async with self._ctx.reading() as session:
            return await session.get(models.Job, row.score_job_id)


async def start_scoring(
    session: AsyncSession, *, user_id: str, actor: str, template_id: str, version: int
) -> models.TemplateVersion:
    """Queue a scoring run of the version; a run already in progress is returned as it is."""
    template, row = await owned_version(session, user_id, template_id, version, lock=True)
    if row.score_state == RUNNING and row.score_job_id is not None:
        running = await session.get(models.Job, row.score_job_id)
        if running is not None and running.status not in JOB_FINAL:
            return row
    goldens = (
        await session.scalars(
            select(models.GoldenDocument)
            .where(models.GoldenDocument.template_id == template_id)
            .order_by(models.GoldenDocument.created_at, models.GoldenDocument.id)
        )
    ).all()
    if not goldens:
        raise FailedPrecondition(
            f"{names.template_name(template_id)} has no golden documents: mark checked "
            "results golden first"
        )
    files_of = await _golden_files(session, [g.result_id for g in goldens])
    fields = from_dicts(row.fields)
    combined = any(len(files_of.get(g.result_id, [])) > 1 for g in goldens)
    job = models.Job(
        id=models.new_id(),
        user_id=user_id,
        display_name=f"Score of {template.display_name} v{version}"[:200],
        status=JobStatus.READY,
        purpose=SCORE_PURPOSE,
        task_mode=TaskMode.COMBINED if combined else TaskMode.INDIVIDUAL,
        template_id=template_id,
        template_version=version,
        configured_fields=[f.as_dict() for f in fields],
        started_at=models.utcnow(),
    )
    session.add(job)
    await session.flush()
    for position, spec in enumerate(fields):
        session.add(
            models.JobField(
                job_id=job.id,
                position=position,
                name=spec.name,
                data_type_id=spec.data_type,
                instruction=spec.instruction,
            )
        )
    expected = []
    for position, golden in enumerate(goldens):
        task = models.Task(
            id=models.new_id(),
            job_id=job.id,
            position=position,
            mode=job.task_mode,
            status=TaskStatus.QUEUED,
        )
        session.add(task)
        await session.flush()
        for order, source in enumerate(files_of.get(golden.result_id, [])):
            copy = models.SourceFile(
                id=models.new_id(),
                job_id=job.id,
                original_path=source.original_path,
                folder=source.folder,
                # The golden file's own bytes: nothing is copied, and deleting this run's
                # job prefix never touches them.
                storage_key=source.storage_key,
                media_type=source.media_type,
                size_bytes=source.size_bytes,
                sha256=source.sha256,
                page_count=source.page_count,
                width=source.width,
                height=source.height,
                status=FileStatus.READY,
            )
            session.add(copy)
            await session.flush()
            session.add(models.TaskFile(task_id=task.id, position=order, file_id=copy.id))
            job.files_total += 1
            job.files_ready += 1
        queue_task(session, task, job.user_id)
        expected.append({"golden": golden.id, "values": dict(golden.values)})
    job.tasks_total = len(goldens)
    move(
        session,
        job,
        JobStatus.QUEUED,
        actor=actor,
        action="score",
        message=f"{names.template_version_name(template_id, version)} on "
        f"{len(goldens)} golden document(s)",
    )
    row.score_state = RUNNING
    row.score_job_id = job.id
    row.score_expected = expected
    row.score_accuracy = None
    row.score_fields = {}
    row.score_compared = row.score_correct = 0
    row.score_error = ""
    row.score_started_at = models.utcnow()
    row.score_finished_at = None
    return row


async def _golden_files(
    session: AsyncSession, result_ids: list[str]
) -> dict[str, list[models.SourceFile]]:
    out: dict[str, list[models.SourceFile]] = {}
    for result_id, source in await session.execute(
        select(models.Result.id, models.SourceFile)
        .join(models.TaskFile, models.TaskFile.task_id == models.Result.task_id)
        .join(models.SourceFile, models.SourceFile.id == models.TaskFile.file_id)
        .where(models.Result.id.in_(result_ids))
        .order_by(models.Result.id, models.TaskFile.position)
    ):
        out.setdefault(result_id, []).append(source)
    return out


async def settle_score(session: AsyncSession, job: models.Job) -> None:
    """A scoring run finished: compare its results with the golden values, per field."""
    row = await session.scalar(
        select(models.TemplateVersion).where(models.TemplateVersion.score_job_id == job.id)
    )
    if row is None:
        return
    fields = [f.name for f in from_dicts(row.fields)]
    by_position = {
        r.position: r.values
        for r in (
            await session.scalars(select(models.Result).where(models.Result.job_id == job.id))
        ).all()
    }
    per_field: dict[str, list[int]] = {name: [0, 0] for name in fields}
    for position, item in enumerate(row.score_expected):
        golden: dict[str, Any] = item["values"]
        got = by_position.get(position)  # None: the golden document could not be extracted
        for name in fields:
            if name not in golden:
                continue  # a field the golden document has no answer for
            per_field[name][0] += 1
            if got is not None and normalised(got.get(name)) == normalised(golden[name]):
                per_field[name][1] += 1
    compared = sum(c for c, _ in per_field.values())
    correct = sum(k for _, k in per_field.values())
    row.score_fields = {name: counts for name, counts in per_field.items() if counts[0]}
    row.score_compared = compared
    row.score_correct = correct
    row.score_accuracy = correct / compared if compared else None
    row.score_finished_at = models.utcnow()
    if not by_position:
        row.score_state = FAILED
        row.score_error = "no golden document could be extracted; see the scoring run's tasks"
    elif not compared:
        row.score_state = FAILED
        row.score_error = "the golden documents have no values for this version's fields"
    else:
        row.score_state = SUCCEEDED
