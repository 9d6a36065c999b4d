"""Corrections to extracted results: a user edits values; each edit is a new version."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import InvalidArgument
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext, owned_job
from services.jobs.domain.events import record_event
from services.jobs.domain.results import review
from services.jobs.domain.results.etags import check_etag
from services.jobs.domain.results.values import as_typed, check_value
from services.jobs.domain.results.versions import (
    CORRECTED,
    add_version,
    changes,
    check_reason,
    describe,
    result_of,
)
from services.jobs.store import models


class Results:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def update(
        self,
        *,
        user_id: str,
        actor: str,
        job_id: str,
        result_id: str,
        values: dict[str, object],
        paths: Sequence[str],
        reason: str = "",
        etag: str = "",
    ) -> models.Result:
        """A new version of the result with `values` (those `paths` name) as the user
        typed them, read as their fields' types. `etag`: the result's as the user read it;
        a result changed since is not overwritten (check_etag)."""
        reason = check_reason(reason)

        async def work(session: AsyncSession) -> models.Result:
            job = await owned_job(session, user_id, job_id, lock=True)
            result = await result_of(session, job_id, result_id)
            # Under the job's lock: a correction committed meanwhile has raised the version.
            check_etag(result, etag)
            targets = _masked_fields(paths, values)
            for name in sorted(targets):
                check_value(name, values.get(name))
            rows = await session.execute(
                select(models.JobField.name, models.JobField.data_type_id).where(
                    models.JobField.job_id == job_id
                )
            )
            types = {name: data_type for name, data_type in rows}
            unknown = targets - set(types)
            if unknown:
                raise InvalidArgument(f"unknown field(s) in values: {sorted(unknown)}")
            previous = dict(result.values)
            given: dict[str, object] = {}
            for name in sorted(targets):
                value = values.get(name)
                # A value sent back as stored is no change, whatever its form (a number
                # stored before amounts were strings): only a new value is read as its type.
                unchanged = not changes({name: previous.get(name)}, {name: value})
                given[name] = value if unchanged else as_typed(name, types[name], value)
            changed = changes(previous, {**previous, **given})
            if not changed:
                return result  # nothing changed: no version, no event
            # Only changed values are written: a number sent back as-is stays as stored.
            new = {**previous, **{c["field"]: c["new"] for c in changed}}
            version = add_version(
                session,
                result,
                values=new,
                previous=previous,
                kind=CORRECTED,
                actor=actor,
                reason=reason,
                corrected={*result.corrected_fields, *(c["field"] for c in changed)},
            )
            result.edited = True
            # A corrected value was looked at: it leaves the review queue. Only the values
            # that changed: a client sending the whole map back did not look at the others.
            await review.mark_reviewed(
                session,
                job,
                result,
                [c["field"] for c in changed],
                self._ctx.settings.review_confidence_threshold,
            )
            result.updated_at = models.utcnow()
            record_event(
                session,
                job,
                kind="result.edited",
                actor=actor,
                subject=names.result_name(job_id, result_id),
                message=describe(version),
            )
            return result

        # Locks the job's row, then writes the result's: like every path locking a job's
        # row, run again whole when PostgreSQL aborts it to break a lock cycle.
        return await self._ctx.run_transaction(work)


def _masked_fields(paths: Sequence[str], values: dict[str, object]) -> set[str]:
    """The field names an update mask selects (`values` or `values.<field>`)."""
    targets: set[str] = set()
    for path in paths or ["values"]:
        if path == "values":
            targets |= set(values)
        elif path.startswith("values."):
            targets.add(path.removeprefix("values."))
        else:
            raise InvalidArgument(f"update_mask path {path!r} cannot be updated; use values")
    return targets
