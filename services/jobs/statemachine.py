"""The one transition table for jobs, files and tasks.

Every status change in the jobs service goes through `transition()`; an illegal
change raises FailedPrecondition (gRPC FAILED_PRECONDITION), never a silent write.
"""

from __future__ import annotations

from collections.abc import Mapping

from bytereview.core.errors import FailedPrecondition

JOB_FINISHED = frozenset({"COMPLETED", "PARTIALLY_COMPLETED", "FAILED"})
JOB_FINAL = JOB_FINISHED | {"CANCELLED"}
_JOB_ACTIVE = ("PENDING_UPLOAD", "ANALYZING", "READY", "QUEUED", "RUNNING", "PAUSED")

JOB_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "PENDING_UPLOAD": frozenset({"ANALYZING", "CANCELLED"}),
    "ANALYZING": frozenset({"READY", "FAILED", "CANCELLED"}),
    "READY": frozenset({"QUEUED", "CANCELLED"}),
    "QUEUED": frozenset({"RUNNING", "PAUSED", "CANCELLED", *JOB_FINISHED}),
    "RUNNING": frozenset({"PAUSED", "CANCELLED", *JOB_FINISHED}),
    "PAUSED": frozenset({"QUEUED", "RUNNING", "CANCELLED"}),
    # Retrying failed tasks re-opens a finished job.
    "COMPLETED": frozenset(),
    "PARTIALLY_COMPLETED": frozenset({"QUEUED"}),
    "FAILED": frozenset({"QUEUED"}),
    "CANCELLED": frozenset(),
}

FILE_SETTLED = frozenset({"READY", "UNPACKED", "UNSUPPORTED", "FAILED"})
FILE_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "PENDING_UPLOAD": frozenset({"UPLOADED", "FAILED"}),
    "UPLOADED": frozenset({"ANALYZING", *FILE_SETTLED}),
    "ANALYZING": FILE_SETTLED,
    "READY": frozenset(),
    "UNPACKED": frozenset(),
    "UNSUPPORTED": frozenset(),
    "FAILED": frozenset(),
}

TASK_SETTLED = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
TASK_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "QUEUED": frozenset({"RUNNING", "FAILED", "CANCELLED"}),
    # Back to QUEUED after a retryable failure.
    "RUNNING": frozenset({"QUEUED", "SUCCEEDED", "FAILED", "CANCELLED"}),
    "SUCCEEDED": frozenset(),
    "FAILED": frozenset({"QUEUED"}),
    "CANCELLED": frozenset(),
}

TABLES: Mapping[str, Mapping[str, frozenset[str]]] = {
    "job": JOB_TRANSITIONS,
    "file": FILE_TRANSITIONS,
    "task": TASK_TRANSITIONS,
}

_WHY = {
    ("job", "COMPLETED"): "the job has completed",
    ("job", "CANCELLED"): "the job was cancelled",
}


def can_transition(kind: str, current: str, target: str) -> bool:
    return target in TABLES[kind].get(current, frozenset())


def check_transition(kind: str, current: str, target: str, *, action: str = "") -> None:
    """Raise FailedPrecondition unless `current -> target` is in the table for `kind`."""
    if not can_transition(kind, current, target):
        what = action or f"move to {target}"
        why = _WHY.get((kind, current), f"the {kind} is {current}")
        raise FailedPrecondition(f"cannot {what}: {why}")


def is_job_active(status: str) -> bool:
    return status in _JOB_ACTIVE
