"""The review queue: values a person should look at, the most consequential first.

A value needs review when nobody reviewed it yet and its confidence is under the
threshold, or it is not empty and its evidence was not verified. Accepting a value or
correcting it (UpdateResult) marks it reviewed. Each result keeps its count of values
needing review and each job the sum, so "N values need review" is a column read.

Every value nobody reviewed yet has a `review_items` row holding what the queue filters
and orders by (confidence, unverified, needs review at the platform's threshold, impact),
written with the assessments and rewritten whenever they or the values change
(`index_result`). A page of the queue is then a keyset query on an index, on a job of
100,000 results as on one of two.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, false, func, insert, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import InvalidArgument, NotFound
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext, owned_job
from services.jobs.domain.events import record_event
from services.jobs.domain.pages.keyset import Keyset, page_of
from services.jobs.domain.pages.tokens import Key
from services.jobs.domain.queries import codec_of
from services.jobs.domain.results.etags import check_etag
from services.jobs.store import models

# Money goes into accounting as is: a wrong amount costs more than a wrong address.
FIELD_WEIGHTS = {
    "currency": 2.0,
    "number": 1.5,
    "date": 1.5,
    "date_dmy": 1.5,
    "date_mdy": 1.5,
    "date_ymd": 1.5,
}
ALL_JOBS = "-"
_VALUE_NAME = re.compile(
    r"^jobs/(?P<job>[0-9a-f]{32})/results/(?P<result>[0-9a-f]{32})/values/(?P<field>[A-Za-z_]\w{0,99})$"
)
_MAX_QUOTE = 2000
# Why a worker emptied the extractor's answer (ValueAssessment.problem); a value with one
# needs review (reason `unreadable`). Its worker keeps it under 300 characters.
PROBLEM = "problem"
_MAX_PROBLEM = 500
# Set by the jobs service on an empty value of a result some file of which could not be
# read (combined mode): the value may be printed in that file, so its emptiness is no more
# verified than an unverified value is, and it needs review (reason `file_skipped`).
FILE_SKIPPED = "file_skipped"


def clean(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A worker's assessment as stored: confidence in [0, 1], the quote bounded."""
    try:
        confidence = float(raw.get("confidence", 0.0))
    except (TypeError, ValueError):
        confidence = 0.0
    if not math.isfinite(confidence):
        confidence = 0.0
    out: dict[str, Any] = {
        "confidence": min(1.0, max(0.0, confidence)),
        "verified": bool(raw.get("verified", False)),
        "reviewed": False,
    }
    problem = raw.get(PROBLEM)
    if problem:
        out[PROBLEM] = str(problem)[:_MAX_PROBLEM]
    evidence = raw.get("evidence")
    if isinstance(evidence, Mapping):
        out["evidence"] = {
            "file": str(evidence.get("file", ""))[:200],
            "page": max(0, int(evidence.get("page", 0) or 0)),
            "quote": str(evidence.get("quote", ""))[:_MAX_QUOTE],
        }
        box = evidence.get("box")
        if isinstance(box, Mapping):
            out["evidence"]["box"] = {
                k: min(1.0, max(0.0, float(box.get(k, 0.0) or 0.0)))
                for k in ("left", "top", "right", "bottom")
            }
    return out


def unverified(assessment: Mapping[str, Any], value: Any) -> bool:
    """A value whose evidence was not found, an empty one a file left out may hold, or one
    emptied because the extractor's answer could not be used."""
    if value is None:
        return bool(assessment.get(FILE_SKIPPED, False) or assessment.get(PROBLEM))
    return not assessment.get("verified", False)


def needs_review(assessment: Mapping[str, Any], value: Any, threshold: float) -> bool:
    if assessment.get("reviewed"):
        return False
    if float(assessment.get("confidence", 0.0)) < threshold:
        return True
    return unverified(assessment, value)


def reasons(assessment: Mapping[str, Any], value: Any, threshold: float) -> list[str]:
    out = []
    if float(assessment.get("confidence", 0.0)) < threshold:
        out.append("low_confidence")
    if value is not None and not assessment.get("verified", False):
        out.append("unverified")
    if value is None and assessment.get(FILE_SKIPPED):
        out.append(FILE_SKIPPED)
    if value is None and assessment.get(PROBLEM):
        out.append("unreadable")
    return out


def flagged(
    assessments: Mapping[str, dict[str, Any]], values: Mapping[str, Any], threshold: float
) -> tuple[dict[str, dict[str, Any]], int]:
    """Each value's assessment with its `needs_review` set, and how many need review."""
    out = {}
    count = 0
    for field, assessment in assessments.items():
        flag = needs_review(assessment, values.get(field), threshold)
        out[field] = {**assessment, "needs_review": flag}
        count += flag
    return out, count


def settle(result: models.Result, threshold: float) -> int:
    """Set each value's `needs_review` and the result's count; returns the count's change."""
    assessments, count = flagged(result.assessments, result.values, threshold)
    result.assessments = assessments  # a new dict: the JSON column sees the change
    change = count - (result.review_count or 0)
    result.review_count = count
    return change


async def resettle(
    session: AsyncSession, job: models.Job, result: models.Result, threshold: float
) -> None:
    """After a result's assessments or values changed: its flags, its count, the job's
    sum, and its rows in the queue."""
    job.values_needing_review = max(0, (job.values_needing_review or 0) + settle(result, threshold))
    await index_result(session, job, result)


async def mark_reviewed(
    session: AsyncSession,
    job: models.Job,
    result: models.Result,
    fields: Iterable[str],
    threshold: float,
) -> None:
    """Fields a user accepted or corrected leave the queue."""
    assessments = dict(result.assessments)
    for field in fields:
        if field in assessments:
            assessments[field] = {**assessments[field], "reviewed": True}
    result.assessments = assessments
    await resettle(session, job, result, threshold)


def impact(data_type: str, confidence: float, unverified: bool) -> float:
    """How much a wrong value would cost: the field's weight times the chance it is wrong
    (an unverified value ranks as if no better than even)."""
    weight = FIELD_WEIGHTS.get(data_type, 1.0)
    risk = max(1.0 - confidence, 0.5 if unverified else 0.0)
    return round(weight * risk, 4)


def rank(value_impact: float) -> int:
    """The stored sort key: impact in 1/10,000ths, negated so ascending is highest first."""
    return -round(value_impact * 10_000)


def item_rows(
    *,
    job: models.Job,
    result_id: str,
    position: int,
    values: Mapping[str, Any],
    assessments: Mapping[str, Mapping[str, Any]],
    types: Mapping[str, str],
) -> list[dict[str, Any]]:
    """The `review_items` rows of one result: a row per value not reviewed yet, its
    assessment settled (`needs_review` set for the platform's threshold)."""
    rows = []
    for field, assessment in assessments.items():
        if assessment.get("reviewed"):
            continue
        data_type = types.get(field, "text")
        confidence = float(assessment.get("confidence", 0.0))
        not_checked = unverified(assessment, values.get(field))
        rows.append(
            {
                "result_id": result_id,
                "field": field,
                "job_id": job.id,
                "user_id": job.user_id,
                "position": position,
                "data_type": data_type,
                "confidence": confidence,
                "unverified": not_checked,
                "flagged": bool(assessment.get("needs_review", False)),
                "rank": rank(impact(data_type, confidence, not_checked)),
            }
        )
    return rows


async def field_types(session: AsyncSession, job_id: str) -> dict[str, str]:
    """The job's field names -> data type ids."""
    return {
        field: data_type
        for (_, field), data_type in (await _field_types(session, [job_id])).items()
    }


async def add_items(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(models.ReviewItem), list(rows))


async def index_result(session: AsyncSession, job: models.Job, result: models.Result) -> None:
    """Rewrite one result's rows in the queue from its current values and assessments."""
    await session.execute(delete(models.ReviewItem).where(models.ReviewItem.result_id == result.id))
    await add_items(
        session,
        item_rows(
            job=job,
            result_id=result.id,
            position=result.position,
            values=result.values,
            assessments=result.assessments,
            types=await field_types(session, job.id),
        ),
    )


def _order(item: ReviewItem) -> tuple[int, str, int, str]:
    return (rank(item.impact), item.job_id, item.position, item.field)


@dataclass(frozen=True, slots=True)
class ReviewItem:
    job_id: str
    result_id: str
    field: str
    data_type: str
    value: Any
    assessment: dict[str, Any]
    reasons: list[str]
    impact: float
    position: int
    task_id: str
    # The result's version when the value was read: its etag (etags.etag).
    version: int


class Reviews:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    def threshold(self, requested: float = 0.0) -> float:
        if not math.isfinite(requested) or not 0.0 <= requested <= 1.0:
            raise InvalidArgument(f"confidence_below must be between 0 and 1, got {requested}")
        return requested or self._ctx.settings.review_confidence_threshold

    async def list(
        self,
        user_id: str,
        job_id: str,
        *,
        confidence_below: float,
        page_size: int,
        page_token: str,
    ) -> tuple[list[ReviewItem], str, int]:
        """One page of the queue of a job (or of every job of the user, `-`), by impact."""
        threshold = self.threshold(confidence_below)
        size = names.page_size(page_size)
        # The caller too: `-` is every job of whoever calls, so a token of one user's would
        # page another's queue (a job id is one user's already).
        scope = f"review:{user_id}:{job_id}:{threshold}"
        codec = codec_of(self._ctx)
        after = codec.decode(page_token, scope)
        if after is not None and len(after) != 4:
            raise InvalidArgument("page_token is malformed")
        item = models.ReviewItem
        key: Key | None
        if job_id == ALL_JOBS:
            where = [item.user_id == user_id]
            order = Keyset((item.rank, item.job_id, item.position, item.field))
            key = after
        else:
            where = [item.job_id == job_id]
            # One job: its id is the same in every key; the index has no column for it.
            order = Keyset((item.rank, item.position, item.field))
            key = None if after is None else (after[0], *after[2:])
        if confidence_below:
            # Another threshold than the platform's: both halves of the index, merged.
            wanted = or_(item.confidence < threshold, item.unverified == true())
            halves = [[item.flagged == true(), wanted], [item.flagged == false(), wanted]]
        else:
            halves = [[item.flagged == true()]]
        async with self._ctx.reading() as session:
            if job_id != ALL_JOBS:
                await owned_job(session, user_id, job_id)
            rows: list[Any] = []
            total = 0
            for half in halves:
                rows += (
                    await session.execute(
                        select(item, models.Result.task_id)
                        .join(models.Result, models.Result.id == item.result_id)
                        .where(*where, *half, *order.after(key))
                        .order_by(*order.order_by())
                        .limit(size + 1)
                    )
                ).all()
                counted = select(func.count()).select_from(item).where(*where, *half)
                total += int(await session.scalar(counted) or 0)
            shown = await _shown_values(session, [row for row, _ in rows])
        items = []
        for row, task_id in rows:
            value, assessment, version = shown[(row.result_id, row.field)]
            items.append(
                ReviewItem(
                    job_id=row.job_id,
                    result_id=row.result_id,
                    field=row.field,
                    data_type=row.data_type,
                    value=value,
                    assessment={**assessment, "needs_review": True},
                    reasons=reasons(assessment, value, threshold),
                    impact=impact(row.data_type, row.confidence, row.unverified),
                    position=row.position,
                    task_id=task_id,
                    version=version,
                )
            )
        items.sort(key=_order)
        page, token = page_of(items[: size + 1], size, codec=codec, scope=scope, key_of=_order)
        return page, token, total

    async def accept(self, *, user_id: str, actor: str, name: str, etag: str = "") -> ReviewItem:
        """Mark one value reviewed as it is. `etag`: the result's as the item was read; a
        result changed since is not marked (check_etag): the value accepted would be one
        the user never saw."""
        ids = parse_value_name(name)
        threshold = self.threshold()

        async def work(session: AsyncSession) -> ReviewItem:
            job = await owned_job(session, user_id, ids["job"], lock=True)
            result = await session.scalar(
                select(models.Result).where(
                    models.Result.id == ids["result"], models.Result.job_id == job.id
                )
            )
            if result is None or ids["field"] not in result.assessments:
                raise NotFound(f"review item {name} not found")
            check_etag(result, etag, field="etag")
            await mark_reviewed(session, job, result, [ids["field"]], threshold)
            result.updated_at = models.utcnow()
            record_event(
                session,
                job,
                kind="result.reviewed",
                actor=actor,
                subject=names.result_name(job.id, result.id),
                message=f"accepted {ids['field']}",
            )
            types = await _field_types(session, {job.id})
            value = result.values.get(ids["field"])
            assessment = result.assessments[ids["field"]]
            return ReviewItem(
                job_id=job.id,
                result_id=result.id,
                field=ids["field"],
                data_type=types.get((job.id, ids["field"]), "text"),
                value=value,
                assessment=assessment,
                reasons=[],
                impact=0.0,
                position=result.position,
                task_id=result.task_id,
                version=result.version,
            )

        # Locks the job's row, then writes the result's, as a correction does.
        return await self._ctx.run_transaction(work)


def parse_value_name(name: str) -> dict[str, str]:
    match = _VALUE_NAME.match(name or "")
    if match is None:
        raise InvalidArgument(
            f"name must look like 'jobs/{{job}}/results/{{result}}/values/{{field}}', got {name!r}"
        )
    return match.groupdict()


def value_name(job_id: str, result_id: str, field: str) -> str:
    return f"{names.result_name(job_id, result_id)}/values/{field}"


async def _field_types(session: Any, job_ids: Iterable[str]) -> dict[tuple[str, str], str]:
    ids: Sequence[str] = list(job_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(models.JobField.job_id, models.JobField.name, models.JobField.data_type_id).where(
            models.JobField.job_id.in_(ids)
        )
    )
    return {(job_id, name): data_type for job_id, name, data_type in rows}


# Results whose values are read at a time while a review page is built (`_shown_values`).
VALUES_FETCH = 8


async def _shown_values(
    session: AsyncSession, rows: Sequence[models.ReviewItem]
) -> dict[tuple[str, str], tuple[Any, dict[str, Any], int]]:
    """(result id, field) -> (the value, its assessment, the result's version) for each item
    of `rows`; the version is read with the values, so its etag names what was shown.

    An item shows one value, but its result's values and assessments are one JSON column
    each: joined to every item, a result of 100 values of 10,000 characters was read (and
    decoded) once per item of it, ~2 MB of memory each (196 MB for its 100 items, ~4 GB for
    a page of 2,002). Each result is read once, a few at a time, and only the fields shown
    are kept."""
    wanted: dict[str, set[str]] = {}
    for row in rows:
        wanted.setdefault(row.result_id, set()).add(row.field)
    shown: dict[tuple[str, str], tuple[Any, dict[str, Any], int]] = {}
    ids = list(wanted)
    for start in range(0, len(ids), VALUES_FETCH):
        found = await session.execute(
            select(
                models.Result.id,
                models.Result.values,
                models.Result.assessments,
                models.Result.version,
            ).where(models.Result.id.in_(ids[start : start + VALUES_FETCH]))
        )
        for result_id, values, assessments, version in found:
            for field in wanted[result_id]:
                shown[(result_id, field)] = (
                    values.get(field),
                    assessments.get(field, {}),
                    version,
                )
    return shown
