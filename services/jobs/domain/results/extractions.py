"""Storing an extraction: a task's first answer is its result's version 1; a re-run's answer
is the next version of the same result (a re-run adds versions, it never replaces the row).

Each extraction records its input key, a digest of the files' bytes and the fields, which
makes re-runs idempotent per file + fields: unchanged inputs are not extracted again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.jobs.domain.events import SYSTEM_ACTOR
from services.jobs.domain.fields import job_fields
from services.jobs.domain.results import review
from services.jobs.domain.results.versions import EXTRACTED, RERUN, add_version
from services.jobs.store import models


def input_key(file_digests: Iterable[str], fields: Iterable[models.JobField]) -> str:
    """Digest of what an extraction reads: the files' bytes (their sha256, in order) and
    the fields (name, type, instruction, in order)."""
    payload = json.dumps(
        {
            "files": list(file_digests),
            "fields": [[f.name, f.data_type_id, f.instruction] for f in fields],
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


async def task_input_key(session: AsyncSession, job_id: str, task_ids: list[str]) -> dict[str, str]:
    """The input key of each task as it would be extracted now."""
    fields = await job_fields(session, job_id)
    digests: dict[str, list[str]] = {task_id: [] for task_id in task_ids}
    for task_id, sha256, key in await session.execute(
        select(models.TaskFile.task_id, models.SourceFile.sha256, models.SourceFile.storage_key)
        .join(models.SourceFile, models.SourceFile.id == models.TaskFile.file_id)
        .where(models.TaskFile.task_id.in_(task_ids))
        .order_by(models.TaskFile.task_id, models.TaskFile.position)
    ):
        # A file analysed without a digest is known by its storage key (its bytes never change).
        digests[task_id].append(sha256 or f"key:{key}")
    return {task_id: input_key(files, fields) for task_id, files in digests.items()}


@dataclass(frozen=True, slots=True)
class Extraction:
    """One task's answer from the extractor (tokens bounded and extractor name cut already)."""

    task: models.Task
    values: dict[str, Any]
    value_sources: dict[str, str]
    input_tokens: int
    output_tokens: int
    extractor: str
    # Field -> its assessment as stored (review.clean), `needs_review` not set yet.
    assessments: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Combined mode: [{file, path, reason}] of the files left out, unreadable.
    skipped_files: list[dict[str, str]] = field(default_factory=list)


def _asked_only(e: Extraction, asked: set[str]) -> Extraction:
    if asked.issuperset(e.values) and asked.issuperset(e.value_sources):
        return e
    return dataclasses.replace(
        e,
        values={k: v for k, v in e.values.items() if k in asked},
        value_sources={k: v for k, v in e.value_sources.items() if k in asked},
        assessments={k: v for k, v in e.assessments.items() if k in asked},
    )


async def record_extractions(
    session: AsyncSession,
    job: models.Job,
    extractions: Sequence[Extraction],
    review_threshold: float,
) -> int:
    """Store a batch of answers for one job: first answers as new results with their version
    1 in two multi-row INSERTs (no ORM objects: a batch of 500 reports is two statements);
    answers to re-runs as the next version of their result (`record_extraction`).

    Returns how many values of the new results need review: the caller adds them to the
    job's count once it holds the job's row (a batch of reports may take that row last).
    Re-runs change the job's count themselves (`review.resettle`): their caller holds the
    row before."""
    if not extractions:
        return 0
    # Only the fields the job asked for are stored: a report naming others (a worker not
    # ours; ours drops them, services/extract/bounds.py) must not add columns to every
    # export and page of results.
    asked = {f.name for f in await job_fields(session, job.id)}
    extractions = [_asked_only(e, asked) for e in extractions]
    task_ids = [e.task.id for e in extractions]
    keys = await task_input_key(session, job.id, task_ids)
    existing = set(
        (
            await session.scalars(
                select(models.Result.task_id).where(models.Result.task_id.in_(task_ids))
            )
        ).all()
    )
    template_id, template_version = (
        (job.template_id, job.template_version)
        if job.template_id and job.template_version
        else (None, None)
    )
    now = models.utcnow()
    results: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    # The review queue's rows of the new results (review.item_rows), after the results.
    items: list[dict[str, Any]] = []
    types: dict[str, str] | None = None
    needing_total = 0
    for e in extractions:
        if e.task.id in existing:
            # A re-run: the re-extracted fields get their new assessments.
            chosen = set(e.task.rerun_fields) if e.task.rerun_fields else set(e.values)
            result = await record_extraction(
                session,
                job,
                e.task,
                values=e.values,
                value_sources=e.value_sources,
                input_tokens=e.input_tokens,
                output_tokens=e.output_tokens,
                extractor=e.extractor,
            )
            # The files a re-run could not read are those of its own answer.
            result.skipped_files = e.skipped_files or None
            result.assessments = {
                **{k: v for k, v in result.assessments.items() if k not in chosen},
                **{k: v for k, v in e.assessments.items() if k in chosen},
            }
            await review.resettle(session, job, result, review_threshold)
            continue
        assessments, needing_review = review.flagged(e.assessments, e.values, review_threshold)
        needing_total += needing_review
        result_id = models.new_id()
        if assessments:
            if types is None:
                types = await review.field_types(session, job.id)
            items += review.item_rows(
                job=job,
                result_id=result_id,
                position=e.task.position,
                values=e.values,
                assessments=assessments,
                types=types,
            )
        results.append(
            {
                "id": result_id,
                "job_id": job.id,
                "task_id": e.task.id,
                "position": e.task.position,
                "values": e.values,
                "value_sources": e.value_sources,
                "edited": False,
                "version": 1,
                "corrected_fields": [],
                "assessments": assessments,
                "review_count": needing_review,
                "input_tokens": e.input_tokens,
                "output_tokens": e.output_tokens,
                "extractor": e.extractor,
                "skipped_files": e.skipped_files or None,
                "created_at": now,
                "updated_at": now,
            }
        )
        versions.append(
            {
                "result_id": result_id,
                "version": 1,
                "kind": EXTRACTED,
                "values": e.values,
                "changes": [],
                "actor": SYSTEM_ACTOR,
                "reason": "",
                "restored_version": 0,
                "corrected": [],
                "template_id": template_id,
                "template_version": template_version,
                "input_key": keys[e.task.id],
                "created_at": now,
            }
        )
    if results:
        await session.execute(insert(models.Result), results)
        await session.execute(insert(models.ResultVersion), versions)
        await review.add_items(session, items)
    return needing_total


async def record_extraction(
    session: AsyncSession,
    job: models.Job,
    task: models.Task,
    *,
    values: dict[str, Any],
    value_sources: dict[str, str],
    input_tokens: int,
    output_tokens: int,
    extractor: str,
) -> models.Result:
    key = (await task_input_key(session, job.id, [task.id]))[task.id]
    template = (
        (job.template_id, job.template_version)
        if job.template_id and job.template_version
        else None
    )
    result = await session.scalar(select(models.Result).where(models.Result.task_id == task.id))
    if result is None:
        result = models.Result(
            id=models.new_id(),
            job_id=job.id,
            task_id=task.id,
            position=task.position,
            value_sources=value_sources,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            extractor=extractor,
        )
        session.add(result)
        await session.flush()
        add_version(
            session,
            result,
            values=values,
            kind=EXTRACTED,
            actor=SYSTEM_ACTOR,
            template=template,
            input_key=key,
        )
        return result
    # A re-run: take the chosen fields (all by default) from the new answer.
    chosen = set(task.rerun_fields) if task.rerun_fields else None
    previous = dict(result.values)
    new = (
        {**previous, **{k: v for k, v in values.items() if k in chosen}}
        if chosen is not None
        else values
    )
    corrected = set(result.corrected_fields) - (chosen if chosen is not None else set(previous))
    add_version(
        session,
        result,
        values=new,
        previous=previous,
        kind=RERUN,
        actor=SYSTEM_ACTOR,
        corrected=corrected,
        template=template,
        input_key=key,
    )
    result.value_sources = {**result.value_sources, **value_sources}
    result.input_tokens += input_tokens
    result.output_tokens += output_tokens
    result.extractor = extractor
    task.rerun_fields = None
    return result
