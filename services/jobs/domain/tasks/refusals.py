"""Whether a worker's result is within what a job can ask for, and why not.

A result past the bounds is refused alone, not with the reports it came with: the batch's
honest results apply, and its task fails PERMANENT with the reason (reports.py). Failed, not
left RUNNING: a task left running wedges its job until the message is dead-lettered, and the
worker, told of an error, would redeliver it and pay the model again for a result that would
be refused again (the bounds are deterministic). Failed, not stored cut: a worker token could
be stolen, so nothing of a refused result is stored, only why (bounded by MAX_ERROR).
A refused result of an earlier attempt than its task's latest (a stalled worker reporting
after the redelivered message began the task again) fails nothing, as that attempt's own
failure would not: the worker is told why all the same, and the latest run goes on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from bytereview.core.errors import InvalidArgument
from bytereview.core.limits import MAX_FILES_PER_COMBINED_TASK
from services.jobs.domain.results.values import check_reported


class ResultReport(Protocol):
    """What of a worker's result is judged here (reports.ResultReport has it): a protocol,
    so this module needs nothing from the one that applies reports."""

    @property
    def values(self) -> Mapping[str, Any]: ...

    @property
    def value_sources(self) -> Mapping[str, str]: ...

    @property
    def skipped_files(self) -> Sequence[Mapping[str, str]]: ...


REFUSED = "the worker's result was refused"


def check_report(report: ResultReport, *, where: str = "result") -> None:
    """InvalidArgument for a result past the bounds of what a job can ask for
    (results.values.check_reported): what a worker reports is stored and shown with every
    page of results and every export."""
    check_reported(report.values, report.value_sources, where=where)
    if len(report.skipped_files) > MAX_FILES_PER_COMBINED_TASK:
        raise InvalidArgument(
            f"{where}.skipped_files names more files than a task has"
            f" (at most {MAX_FILES_PER_COMBINED_TASK})"
        )


def refusal(report: ResultReport) -> str:
    """Why `report` is refused (the task's error and the worker's answer), or '' if it is
    within the bounds. Named `result.…`, not by its place in a batch: the task's error is
    read by the job's user, for whom a batch's position means nothing, and the worker's
    answers are in its request's order already."""
    try:
        check_report(report)
    except InvalidArgument as exc:
        return f"{REFUSED}: {exc}"
    return ""
