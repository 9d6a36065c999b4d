"""A result's version history: every change to its values is a new, immutable version.

Version 1 is the extractor's first answer; a correction, a revert or a re-run adds the next.
The result row keeps the latest values (what lists and exports read); the versions keep the
rest: who, when, old -> new, why.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import NotFound
from bytereview.core.limits import check_length
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext, owned_job
from services.jobs.domain.events import record_event
from services.jobs.domain.pages.keyset import Keyset, page_of, read_page
from services.jobs.domain.queries import codec_of
from services.jobs.domain.results import review
from services.jobs.domain.results.etags import check_etag
from services.jobs.store import models

EXTRACTED = "EXTRACTED"
CORRECTED = "CORRECTED"
REVERTED = "REVERTED"
RERUN = "RERUN"
IMPORTED = "IMPORTED"

MAX_REASON = 1000


def check_reason(reason: str) -> str:
    return check_length(reason.strip(), MAX_REASON, field="reason")


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """The fields whose value differs, with both values; in field-name order."""
    return [
        {"field": name, "old": old.get(name), "new": new.get(name)}
        for name in sorted(set(old) | set(new))
        if _canonical(old.get(name)) != _canonical(new.get(name))
    ]


def _canonical(value: Any) -> str:
    # Values travel as google.protobuf.Value, whose numbers are doubles: a stored 5 comes
    # back from a client as 5.0, which is no change.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True)


def add_version(
    session: AsyncSession,
    result: models.Result,
    *,
    values: dict[str, Any],
    kind: str,
    actor: str,
    previous: dict[str, Any] | None = None,
    reason: str = "",
    corrected: Collection[str] = (),
    restored_version: int = 0,
    template: tuple[str, int] | None = None,
    input_key: str = "",
) -> models.ResultVersion:
    """Append the result's next version and make its values the result's current ones.

    `previous` is None for the first version (the result row is new)."""
    number = 1 if previous is None else result.version + 1
    row = models.ResultVersion(
        result_id=result.id,
        version=number,
        kind=kind,
        values=values,
        changes=[] if previous is None else changes(previous, values),
        actor=actor,
        reason=reason,
        restored_version=restored_version,
        corrected=sorted(corrected),
        template_id=template[0] if template else None,
        template_version=template[1] if template else None,
        input_key=input_key,
    )
    session.add(row)
    result.version = number
    result.values = values
    result.corrected_fields = sorted(corrected)
    result.updated_at = models.utcnow()
    return row


def describe(row: models.ResultVersion) -> str:
    """The audit event's message: `v3: total 10.00 -> 12.00 (reason)`."""
    shown = "; ".join(
        f"{c['field']} {json.dumps(c['old'], ensure_ascii=False)} -> "
        f"{json.dumps(c['new'], ensure_ascii=False)}"
        for c in row.changes
    )
    text = f"v{row.version}: {shown or 'no change'}"
    return f"{text} ({row.reason})" if row.reason else text


async def latest_input_keys(session: AsyncSession, result_ids: Sequence[str]) -> dict[str, str]:
    """Per result, the input key of its latest extraction (EXTRACTED or RERUN)."""
    keys: dict[str, tuple[int, str]] = {}
    if not result_ids:
        return {}
    for result_id, version, key in await session.execute(
        select(
            models.ResultVersion.result_id,
            models.ResultVersion.version,
            models.ResultVersion.input_key,
        ).where(
            models.ResultVersion.result_id.in_(result_ids),
            models.ResultVersion.kind.in_((EXTRACTED, RERUN)),
        )
    ):
        if result_id not in keys or version > keys[result_id][0]:
            keys[result_id] = (version, key)
    return {rid: key for rid, (_, key) in keys.items()}


class ResultVersions:
    """History and revert, scoped to the caller's jobs."""

    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def list_versions(
        self, user_id: str, job_id: str, result_id: str, page_size: int, page_token: str
    ) -> tuple[Sequence[models.ResultVersion], str]:
        size = names.page_size(page_size)
        scope = f"result-versions:{result_id}"
        codec = codec_of(self._ctx)
        order = Keyset((models.ResultVersion.version,))
        key = codec.decode(page_token, scope)
        async with self._ctx.reading() as session:
            await _owned_result(session, user_id, job_id, result_id)
            rows = await read_page(
                session,
                select(models.ResultVersion)
                .where(models.ResultVersion.result_id == result_id, *order.after(key))
                .order_by(*order.order_by())
                .limit(size + 1),
            )
        return page_of(rows, size, codec=codec, scope=scope, key_of=lambda v: (v.version,))

    async def current(self, user_id: str, job_id: str, result_id: str) -> models.Result:
        """The result as it is now (its latest version)."""
        async with self._ctx.reading() as session:
            return await _owned_result(session, user_id, job_id, result_id)

    async def get_version(
        self, user_id: str, job_id: str, result_id: str, version: int
    ) -> models.ResultVersion:
        async with self._ctx.reading() as session:
            await _owned_result(session, user_id, job_id, result_id)
            row = await session.get(models.ResultVersion, (result_id, version))
        if row is None:
            raise NotFound(f"{names.result_version_name(job_id, result_id, version)} not found")
        return row

    async def revert(
        self,
        *,
        user_id: str,
        actor: str,
        job_id: str,
        result_id: str,
        version: int,
        reason: str,
        etag: str = "",
    ) -> models.Result:
        """Restores `version`'s values as a new version. `etag`: the result's as the user
        read it; a result changed since is not reverted (check_etag): that would undo a
        correction the user never saw."""
        reason = check_reason(reason)

        async def work(session: AsyncSession) -> models.Result:
            job = await owned_job(session, user_id, job_id, lock=True)
            result = await result_of(session, job_id, result_id)
            check_etag(result, etag, field="etag")
            target = await session.get(models.ResultVersion, (result_id, version))
            if target is None:
                raise NotFound(f"{names.result_version_name(job_id, result_id, version)} not found")
            if target.values == result.values and sorted(target.corrected) == sorted(
                result.corrected_fields
            ):
                return result  # already what that version holds: no version, no event
            row = add_version(
                session,
                result,
                values=dict(target.values),
                previous=dict(result.values),
                kind=REVERTED,
                actor=actor,
                reason=reason,
                corrected=target.corrected,
                restored_version=version,
            )
            result.edited = True
            # Values changed: whether each one needs review may too (unverified and empty).
            await review.resettle(
                session, job, result, self._ctx.settings.review_confidence_threshold
            )
            record_event(
                session,
                job,
                kind="result.reverted",
                actor=actor,
                subject=names.result_name(job_id, result_id),
                message=f"to v{version}; {describe(row)}",
            )
            return result

        # Locks the job's row, then writes the result's, as a correction does.
        return await self._ctx.run_transaction(work)


async def result_of(session: AsyncSession, job_id: str, result_id: str) -> models.Result:
    """The job's result (NOT_FOUND when the job has no such result)."""
    result = await session.scalar(
        select(models.Result).where(models.Result.id == result_id, models.Result.job_id == job_id)
    )
    if result is None:
        raise NotFound(f"result {names.result_name(job_id, result_id)} not found")
    return result


async def _owned_result(
    session: AsyncSession, user_id: str, job_id: str, result_id: str
) -> models.Result:
    """The result, if the caller owns its job; NOT_FOUND alike for missing and foreign."""
    await owned_job(session, user_id, job_id)
    return await result_of(session, job_id, result_id)
