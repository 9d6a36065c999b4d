"""The review queue: values a person should look at, the most consequential first.

A value needs review when nobody reviewed it yet and its confidence is under the
threshold, or it is not empty and its evidence was not verified. Accepting a value or
correcting it (UpdateResult) marks it reviewed. Each result keeps its count of values
needing review and each job the sum, so "N values need review" is a column read and the
queue reads only results that have some.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from bytereview.core.errors import InvalidArgument, NotFound
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext, owned_job
from services.jobs.domain.events import record_event
from services.jobs.domain.keyset import page_of
from services.jobs.domain.queries import codec_of
from services.jobs.store import models

# Money goes into accounting as is: a wrong amount costs more than a wrong address.
FIELD_WEIGHTS = {"currency": 2.0, "number": 1.5, "date_dmy": 1.5, "date_mdy": 1.5, "date_ymd": 1.5}
ALL_JOBS = "-"
_VALUE_NAME = re.compile(
    r"^jobs/(?P<job>[0-9a-f]{32})/results/(?P<result>[0-9a-f]{32})/values/(?P<field>[A-Za-z_]\w{0,99})$"
)
_MAX_QUOTE = 2000


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


def needs_review(assessment: Mapping[str, Any], value: Any, threshold: float) -> bool:
    if assessment.get("reviewed"):
        return False
    if float(assessment.get("confidence", 0.0)) < threshold:
        return True
    return value is not None and not assessment.get("verified", False)


def reasons(assessment: Mapping[str, Any], value: Any, threshold: float) -> list[str]:
    out = []
    if float(assessment.get("confidence", 0.0)) < threshold:
        out.append("low_confidence")
    if value is not None and not assessment.get("verified", False):
        out.append("unverified")
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


def mark_reviewed(
    job: models.Job, result: models.Result, fields: Iterable[str], threshold: float
) -> None:
    """Fields a user accepted or corrected leave the queue."""
    assessments = dict(result.assessments)
    for field in fields:
        if field in assessments:
            assessments[field] = {**assessments[field], "reviewed": True}
    result.assessments = assessments
    job.values_needing_review = max(0, (job.values_needing_review or 0) + settle(result, threshold))


def _order(item: ReviewItem) -> tuple[int, str, int, str]:
    return (-round(item.impact * 10_000), item.job_id, item.position, item.field)


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
        scope = f"review:{job_id}:{threshold}"
        codec = codec_of(self._ctx)
        after = codec.decode(page_token, scope)
        async with self._ctx.reading() as session:
            query = (
                select(models.Result)
                .join(models.Job, models.Job.id == models.Result.job_id)
                .where(models.Job.user_id == user_id)
            )
            if job_id != ALL_JOBS:
                await owned_job(session, user_id, job_id)
                query = query.where(models.Result.job_id == job_id)
            if not confidence_below:
                # The stored counts are for the platform's threshold.
                query = query.where(models.Result.review_count > 0)
            results = (await session.scalars(query)).all()
            job_ids = {r.job_id for r in results}
            types = await _field_types(session, job_ids)
        items = []
        for result in results:
            for field, assessment in result.assessments.items():
                value = result.values.get(field)
                if not needs_review(assessment, value, threshold):
                    continue
                data_type = types.get((result.job_id, field), "text")
                weight = FIELD_WEIGHTS.get(data_type, 1.0)
                confidence = float(assessment.get("confidence", 0.0))
                # Unverified values rank as if no better than even.
                unverified = value is not None and not assessment.get("verified", False)
                risk = max(1.0 - confidence, 0.5 if unverified else 0.0)
                items.append(
                    ReviewItem(
                        job_id=result.job_id,
                        result_id=result.id,
                        field=field,
                        data_type=data_type,
                        value=value,
                        assessment={**assessment, "needs_review": True},
                        reasons=reasons(assessment, value, threshold),
                        impact=round(weight * risk, 4),
                        position=result.position,
                        task_id=result.task_id,
                    )
                )
        # Ordered by impact, computed here (not a column), so the keyset is applied to the
        # sorted list: the token holds the last item's sort key (impact in 1/10,000ths).
        items.sort(key=_order)
        rest = [i for i in items if after is None or _order(i) > tuple(after)]
        page, token = page_of(rest, size, codec=codec, scope=scope, key_of=_order)
        return page, token, len(items)

    async def accept(self, *, user_id: str, actor: str, name: str) -> ReviewItem:
        """Mark one value reviewed as it is."""
        ids = parse_value_name(name)
        threshold = self.threshold()
        async with self._ctx.transaction() as session:
            job = await owned_job(session, user_id, ids["job"], lock=True)
            result = await session.scalar(
                select(models.Result).where(
                    models.Result.id == ids["result"], models.Result.job_id == job.id
                )
            )
            if result is None or ids["field"] not in result.assessments:
                raise NotFound(f"review item {name} not found")
            mark_reviewed(job, result, [ids["field"]], threshold)
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
            )


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
