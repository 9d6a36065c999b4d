"""Job events: the audit trail every change of a job appends to, and what wakes watchers."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.limits import MAX_ERROR
from services.jobs.messaging.hub import TOUCHED_JOBS
from services.jobs.store import models

SYSTEM_ACTOR = "system"


def record_event(
    session: AsyncSession,
    job: models.Job,
    *,
    kind: str,
    actor: str,
    subject: str,
    from_status: str = "",
    to_status: str = "",
    message: str = "",
) -> models.JobEvent:
    """Append an event to the job's trail. The caller holds the job row (locked on PostgreSQL)."""
    job.event_sequence += 1
    job.updated_at = models.utcnow()
    event = models.JobEvent(
        job_id=job.id,
        sequence=job.event_sequence,
        kind=kind,
        actor=actor,
        subject=subject,
        from_status=str(from_status),
        to_status=str(to_status),
        message=message[:MAX_ERROR],
    )
    session.add(event)
    # After commit the hub wakes this job's watchers (messaging.hub.EventHub.committed).
    session.info.setdefault(TOUCHED_JOBS, set()).add(job.id)
    return event
