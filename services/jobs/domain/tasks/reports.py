"""Reports from the extract workers: a task begins, succeeds or fails. Every one is idempotent.

A task's result is keyed by task id (one result per task); a report on a task that is no
longer running returns `applied=False` and changes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import InvalidArgument, NotFound
from bytereview.core.limits import (
    MAX_ERROR,
    MAX_EXTRACTOR,
    MAX_PATH,
    MAX_TASKS_PER_BATCH,
)
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext, locked_job
from services.jobs.domain.events import SYSTEM_ACTOR, record_event
from services.jobs.domain.metrics import observe_task
from services.jobs.domain.results import review
from services.jobs.domain.results.extractions import Extraction, record_extractions
from services.jobs.domain.status import (
    TASK_OPEN,
    TASK_SETTLED,
    JobStatus,
    TaskStatus,
    move,
)
from services.jobs.domain.tasks.finishing import finish_if_done
from services.jobs.domain.tasks.inputs import TaskInput, task_input, task_inputs
from services.jobs.domain.tasks.refusals import refusal
from services.jobs.store import models
from services.jobs.store.errors import deadlocked

log = logging.getLogger(__name__)
FAILURE_CLASSES = ("RETRYABLE", "PERMANENT", "EXHAUSTED")
# _LOCK_ORDER: a running task's row is locked before its job's, every other task's after
# it. Result and failure batches lock their running tasks (in id order) and then the job,
# last; single-task reports and dead letters lock a running task's row and then the job's;
# a begin of a job not running locks the rows of tasks running already (begun again) before
# the job's. Failure and single-task reports used to lock the job first: one of them and a
# batch holding the same task made a lock cycle PostgreSQL broke by aborting one of them, or
# a command queued for the job's row in between (CancelJob, PauseJob: INTERNAL errors).
# Queued and settled tasks are written by paths that hold the job (a resume queueing its
# tasks again, RetryFailedTasks, re-runs, an admin's retry of a dead letter, StartJob and
# the builder creating them): reports lock those rows after the job's, or not. A DeleteJob
# deletes the job's tasks after its row, running ones too; and the queue reconciler writes
# queued and running tasks without their job's row. Cycles through those stay possible, so
# every report, like every command locking a job's row, runs again whole when PostgreSQL
# aborts it to break one (JobsContext.run_transaction; reports are idempotent).
RUNNING = frozenset({TaskStatus.RUNNING})
NONE: frozenset[TaskStatus] = frozenset()
T = TypeVar("T")


class TaskReports:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def begin_task(self, job_id: str, task_id: str) -> TaskInput:
        return await self._ctx.run_transaction(
            lambda session: _begin_task(session, job_id, task_id)
        )

    async def begin_tasks(self, ids: Sequence[tuple[str, str]]) -> list[TaskInput]:
        """`begin_task` for many (job id, task id) pairs in one transaction, answers in order.

        A task that does not exist is `proceed=False` (a worker acks and drops it, as it
        terms a NOT_FOUND). The starts are recorded as one `tasks.progress` event per job
        and batch: a 10,000-task job's trail is not 10,000 start events.

        Once the job runs, a batch takes no lock on the job's row, only on its tasks' rows:
        every begin and report of a job used to queue for that one lock, and a begin needs
        it only to move the job out of QUEUED and number a start event. Starts of a running
        job are therefore not events (they show in the job's progress); a pause or cancel
        racing with such a batch is as if it came just after it (the reports that follow
        apply or are refused as for any task already running).
        """
        check_batch(len(ids))
        return await self._ctx.run_transaction(lambda session: _begin_tasks(session, ids))

    async def task_result(
        self,
        job_id: str,
        task_id: str,
        *,
        values: dict[str, Any],
        value_sources: dict[str, str],
        input_tokens: int,
        output_tokens: int,
        extractor: str,
        assessments: dict[str, dict[str, Any]] | None = None,
        skipped_files: Sequence[dict[str, str]] = (),
        attempt: int = 0,
    ) -> tuple[bool, str, bool]:
        """(applied, why the result was refused or '', superseded). A refused result fails
        its task as in a batch (refusals.py), unless it is of an earlier attempt than the
        task's latest (`_stale`: superseded): the same report has the same effect whichever
        call carries it (the extract worker falls back to this one on a jobs service
        without batches)."""
        report = ResultReport(
            job_id,
            task_id,
            values=values,
            value_sources=value_sources,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            extractor=extractor,
            assessments=assessments,
            skipped_files=tuple(skipped_files),
            attempt=attempt,
        )
        refused = refusal(report)
        if refused:
            # A failure of the attempt that found the result: one of an earlier attempt
            # changes nothing, as a failure it reported itself would not.
            failure = FailureReport(job_id, task_id, "PERMANENT", refused, attempt)
            applied, target, failed = await self._ctx.run_transaction(
                lambda session: _task_failure(session, failure)
            )
            if failed is not None and target == TaskStatus.FAILED:
                observe_task(failed, "failed")
            stale = superseded(applied, target)
            if stale:
                _log_stale_refusal(report)
            return False, refused, stale
        task = await self._ctx.run_transaction(lambda session: self._task_result(session, report))
        if task is None:
            return False, "", False
        observe_task(task, "succeeded")  # once committed: a try run again is not counted
        return True, "", False

    async def _task_result(self, session: AsyncSession, report: ResultReport) -> models.Task | None:
        """The task, if the result applied."""
        job, task = await _locked_task(session, report.job_id, report.task_id)
        if not _reportable(job, task):
            return None  # settled already (a repeat), or cancelled meanwhile
        _succeed(session, job, task, record=True)
        job.tasks_succeeded += 1
        needing = await record_extractions(
            session, job, [_extraction(task, report)], self._threshold()
        )
        job.values_needing_review = (job.values_needing_review or 0) + needing
        await finish_if_done(session, job)
        return task

    async def task_results(self, reports: Sequence[ResultReport]) -> list[tuple[bool, str, bool]]:
        """`task_result` for many tasks in one transaction (group commit), answers in order:
        (applied, why the result was refused or '', superseded).

        Each is idempotent as `task_result` is: a repeat (also within the batch), a task no
        longer running or one that does not exist is not applied and changes nothing. A
        result past the bounds is refused alone: its running task fails PERMANENT with the
        reason (unless the result is of an earlier attempt than the task's latest: then the
        task is left to that attempt), nothing of its values is stored, and the batch's
        other results apply (refusals.py). One `tasks.progress` event per job, batch and
        outcome; the job ends once, after the batch.

        The job's row is locked last, only for its counters, event and end: every report
        batch of a job needs that one row, and holding it through the batch's writes (its
        results, versions and review rows) made the batches of all workers queue behind one
        another. The tasks' rows are locked first, in id order, so two batches never run the
        same task; every other report locks its running tasks' rows before its job's too
        (_LOCK_ORDER). See `_job_last` for when the batch runs again job first.
        """
        check_batch(len(reports))
        # Only a worker that is not ours, or one out of step with these bounds (a rolling
        # upgrade), sends a refused result: ours bounds a model's answer first.
        refused = [refusal(report) for report in reports]
        applied, settled, failed, stale = await self._job_last(
            lambda session, job_first: self._task_results(
                session, reports, refused, job_first=job_first
            )
        )
        for task in settled:
            observe_task(task, "succeeded")
        for task in failed:
            observe_task(task, "failed")
        for report in stale:  # once committed, as the tasks are observed
            _log_stale_refusal(report)
        superseded_reports = {id(report) for report in stale}
        return [
            (done, why, id(report) in superseded_reports)
            for done, why, report in zip(applied, refused, reports, strict=True)
        ]

    async def _task_results(
        self,
        session: AsyncSession,
        reports: Sequence[ResultReport],
        refused: Sequence[str],
        *,
        job_first: bool,
    ) -> tuple[list[bool], list[models.Task], list[models.Task], list[ResultReport]]:
        """Whether each applied, the tasks that succeeded, those failed because their
        result was refused (`refused[i]`, the reason, or ''), and the refused reports of an
        earlier attempt than their task's latest, which changed nothing."""
        applied = [False] * len(reports)
        settled: list[models.Task] = []
        failed: list[models.Task] = []
        stale: list[ResultReport] = []
        keys = [(r.job_id, r.task_id) for r in reports]
        async for job, indexes, tasks in _reported_jobs(session, keys, job_first=job_first):
            succeeded: list[Extraction] = []
            refusals: list[str] = []
            for i in indexes:
                task = tasks.get(keys[i][1])
                if task is None or not _reportable(job, task):
                    continue
                if refused[i] and _stale(task, reports[i]):
                    # A stalled worker's refused result must not fail the run in progress;
                    # an honest one of any attempt applies below (it is the task's answer).
                    stale.append(reports[i])
                    continue
                if refused[i]:
                    _fail(session, job, task, "PERMANENT", refused[i], False)
                    failed.append(task)
                    refusals.append(refused[i])
                    continue
                _succeed(session, job, task, record=False)
                succeeded.append(_extraction(task, reports[i]))
                applied[i] = True
            if not (succeeded or refusals):
                continue
            settled += [e.task for e in succeeded]
            needing = 0
            if succeeded:
                if not job_first and any(e.task.generation for e in succeeded):
                    # Re-runs change the job's review count as they are recorded.
                    await _lock_again(session, job)
                needing = await record_extractions(session, job, succeeded, self._threshold())
            if not job_first:
                await _lock_again(session, job)
            if succeeded:
                job.tasks_succeeded += len(succeeded)
                job.values_needing_review = (job.values_needing_review or 0) + needing
                _progress_event(
                    session,
                    job,
                    TaskStatus.SUCCEEDED,
                    f"{len(succeeded)} task(s) succeeded; {job.tasks_succeeded} of "
                    f"{job.tasks_total} done",
                )
            if refusals:
                job.tasks_failed += len(refusals)
                _progress_event(
                    session,
                    job,
                    TaskStatus.FAILED,
                    f"{len(refusals)} task(s) failed, their result refused; "
                    f"{job.tasks_failed} of {job.tasks_total} failed; "
                    f"first error: PERMANENT: {refusals[0]}"[:MAX_ERROR],
                )
            await finish_if_done(session, job)
        return applied, settled, failed, stale

    async def task_failure(
        self, job_id: str, task_id: str, *, failure_class: str, error: str, attempt: int = 0
    ) -> tuple[bool, str]:
        _check_class(failure_class)
        report = FailureReport(job_id, task_id, failure_class, error, attempt)
        applied, target, task = await self._ctx.run_transaction(
            lambda session: _task_failure(session, report)
        )
        if task is not None and target == TaskStatus.FAILED:
            observe_task(task, "failed")  # once committed: a try run again is not counted
        return applied, target

    async def task_failures(self, reports: Sequence[FailureReport]) -> list[tuple[bool, str]]:
        """`task_failure` for many tasks in one transaction (group commit), answers in order:
        (applied, the task's status after the report; '' for a task that does not exist).

        The same rules as `task_failure`: RETRYABLE queues the task again (the worker's
        redelivery delay is the backoff; its next BeginTask counts the attempt), PERMANENT
        and EXHAUSTED fail it. A repeat (also within the batch), a task no longer running or
        an earlier attempt's failure changes nothing. One `tasks.progress` event per job and
        batch; the job ends once, after the batch, when its last open task has settled. The
        job's row is locked last, as for result batches (`_job_last`): a run where every task
        fails holds it only for its counters, event and end.
        """
        check_batch(len(reports))
        for report in reports:
            _check_class(report.failure_class)
        answers, failed = await self._job_last(
            lambda session, job_first: _task_failures(session, reports, job_first=job_first)
        )
        for task in failed:
            observe_task(task, "failed")
        return answers

    async def dead_letter_task(self, job_id: str, task_id: str, *, error: str) -> bool:
        """A task JetStream gave up on: FAILED, whether it was queued or running."""
        return await self._ctx.run_transaction(
            lambda session: _dead_letter_task(session, job_id, task_id, error)
        )

    async def _job_last(self, batch: Callable[[AsyncSession, bool], Awaitable[T]]) -> T:
        """A report batch, run first job-last (`batch(session, False)`: the job read without
        a lock, its running tasks' rows locked, their rows written, the job's row locked
        last) and in two cases run again job first (`batch(session, True)`: the job's row
        locked right after its tasks', before the writes): its job was cancelled or deleted
        between the first read and the lock (a cancelled job's reports change nothing), or
        PostgreSQL broke a lock cycle it was in. Job first, the batch can still meet a
        report of the same task holding the job's row as it waits for the task's (a failure
        report, another batch's run job first): such a cycle is broken again and the batch
        runs once more (JobsContext.run_transaction)."""
        try:
            async with self._ctx.transaction() as session:
                return await batch(session, False)
        except (_JobMoved, DBAPIError) as error:
            if isinstance(error, DBAPIError) and not deadlocked(error):
                raise
        return await self._ctx.run_transaction(lambda session: batch(session, True))

    def _threshold(self) -> float:
        return self._ctx.settings.review_confidence_threshold


async def _begin_task(session: AsyncSession, job_id: str, task_id: str) -> TaskInput:
    job, task = await _locked_task(session, job_id, task_id)
    refused = _claim(session, job, task, record=True)
    if refused:
        return TaskInput(proceed=False, reason=refused)
    return await task_input(session, job, task)


async def _begin_tasks(session: AsyncSession, ids: Sequence[tuple[str, str]]) -> list[TaskInput]:
    out: list[TaskInput | None] = [None] * len(ids)
    for job_id, indexes in _by_job(ids):
        job = await session.scalar(select(models.Job).where(models.Job.id == job_id))
        running = job is not None and job.status == JobStatus.RUNNING
        wanted = {ids[i][1] for i in indexes}
        if running:
            tasks = await _tasks(session, job_id, wanted, lock=TASK_OPEN)
        else:
            # The job is locked and read again (it may have moved since the first read), its
            # queued tasks written after it, as a resume queues them again (_LOCK_ORDER). A
            # task running already and begun again (begun by a batch that read the job
            # RUNNING while a pause and a resume made it QUEUED) is locked before it, as a
            # report locks it.
            await _tasks(session, job_id, wanted, lock=RUNNING)
            if job is not None:
                await session.refresh(job, with_for_update=True)
            tasks = await _tasks(session, job_id, wanted, lock=NONE)
        claimed: list[tuple[int, models.Task]] = []
        for i in indexes:
            task = tasks.get(ids[i][1])
            if job is None or task is None:
                name = names.task_name(job_id, ids[i][1])
                out[i] = TaskInput(proceed=False, reason=f"task {name} not found")
            elif refused := _claim(session, job, task, record=False):
                out[i] = TaskInput(proceed=False, reason=refused)
            else:
                claimed.append((i, task))
        if job is None or not claimed:
            continue
        if not running:
            _progress_event(session, job, TaskStatus.RUNNING, f"{len(claimed)} task(s) started")
        inputs = await task_inputs(session, job, [t for _, t in claimed])
        for (i, _), got in zip(claimed, inputs, strict=True):
            out[i] = got
    return [got for got in out if got is not None]


async def _task_failure(
    session: AsyncSession, report: FailureReport
) -> tuple[bool, str, models.Task | None]:
    """(applied, the task's status after the report, the task if the report applied)."""
    job, task = await _locked_task(session, report.job_id, report.task_id)
    if not _reportable(job, task) or _stale(task, report):
        cancelled = job.status == JobStatus.CANCELLED
        return False, TaskStatus.CANCELLED if cancelled else task.status, None
    target = _fail(session, job, task, report.failure_class, report.error, True)
    if target == TaskStatus.FAILED:
        job.tasks_failed += 1
        await finish_if_done(session, job)
    return True, target, task


async def _task_failures(
    session: AsyncSession, reports: Sequence[FailureReport], *, job_first: bool
) -> tuple[list[tuple[bool, str]], list[models.Task]]:
    """Answers, and the tasks that failed (not those queued again)."""
    answers: list[tuple[bool, str]] = [(False, "")] * len(reports)
    failed_tasks: list[models.Task] = []
    keys = [(r.job_id, r.task_id) for r in reports]
    async for job, indexes, tasks in _reported_jobs(session, keys, job_first=job_first):
        failed = queued = 0
        first_error = ""
        for i in indexes:
            task = tasks.get(keys[i][1])
            if task is None:
                continue
            report = reports[i]
            if not _reportable(job, task) or _stale(task, report):
                cancelled = job.status == JobStatus.CANCELLED
                answers[i] = (False, TaskStatus.CANCELLED if cancelled else task.status)
                continue
            target = _fail(session, job, task, report.failure_class, report.error, False)
            answers[i] = (True, target)
            if target == TaskStatus.FAILED:
                failed += 1
                failed_tasks.append(task)
            else:
                queued += 1
            first_error = first_error or f"{report.failure_class}: {report.error}"
        if not (failed or queued):
            continue
        if not job_first:
            await _lock_again(session, job)
        job.tasks_failed += failed
        _progress_event(
            session,
            job,
            TaskStatus.FAILED if failed else TaskStatus.QUEUED,
            f"{failed} task(s) failed, {queued} queued to retry; "
            f"{job.tasks_failed} of {job.tasks_total} failed; "
            f"first error: {first_error}"[:MAX_ERROR],
        )
        if failed:
            await finish_if_done(session, job)
    return answers, failed_tasks


async def _dead_letter_task(session: AsyncSession, job_id: str, task_id: str, error: str) -> bool:
    job, task = await _locked_task(session, job_id, task_id)
    if task.status not in TASK_OPEN or job.status == JobStatus.CANCELLED:
        return False  # settled, or its job's cancellation settles it
    move(
        session,
        job,
        TaskStatus.FAILED,
        row=task,
        actor=SYSTEM_ACTOR,
        message=f"EXHAUSTED: {error}",
    )
    task.last_error = error[:MAX_ERROR]
    task.failure = "EXHAUSTED"
    job.tasks_failed += 1
    await finish_if_done(session, job)
    return True


async def _locked_task(
    session: AsyncSession, job_id: str, task_id: str
) -> tuple[models.Job, models.Task]:
    """The task and its job, both rows locked (every task report changes job counters): a
    running task's before the job's, any other task's after it (_LOCK_ORDER)."""
    task_row = select(models.Task).where(models.Task.id == task_id).with_for_update()
    await session.execute(task_row.where(models.Task.status == TaskStatus.RUNNING))
    job = await locked_job(session, job_id)
    task = await session.scalar(task_row.execution_options(populate_existing=True))
    if job is None or task is None or task.job_id != job_id:
        raise NotFound(f"task {names.task_name(job_id, task_id)} not found")
    return job, task


@dataclass(frozen=True, slots=True)
class ResultReport:
    """One task's result, as a worker reports it."""

    job_id: str
    task_id: str
    values: dict[str, Any]
    value_sources: dict[str, str]
    input_tokens: int = 0
    output_tokens: int = 0
    extractor: str = ""
    # Field -> the worker's assessment (evidence, confidence, verified), cleaned on storing.
    assessments: dict[str, dict[str, Any]] | None = None
    # Combined mode: {file (id), path, reason} of each file the worker could not read.
    skipped_files: tuple[dict[str, str], ...] = ()
    # The attempt that found it (the task's `attempts` when the worker began it); 0: the
    # latest. Only a refused result looks at it (`_stale`).
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class FailureReport:
    """One task's failure, as a worker reports it: RETRYABLE, PERMANENT or EXHAUSTED."""

    job_id: str
    task_id: str
    failure_class: str
    error: str = ""
    # The attempt that failed (the task's `attempts` when the worker began it); 0: the latest.
    attempt: int = 0


def check_batch(size: int) -> None:
    if size > MAX_TASKS_PER_BATCH:
        raise InvalidArgument(f"at most {MAX_TASKS_PER_BATCH} tasks per call")


def _claim(session: AsyncSession, job: models.Job, task: models.Task, *, record: bool) -> str:
    """Mark `task` running (its job too); returns why not when it must not run, else ''."""
    if task.status in TASK_SETTLED:
        return f"task is {task.status}"
    if job.status in (JobStatus.PAUSED, JobStatus.CANCELLED):
        return f"job is {job.status}"
    if task.status == TaskStatus.QUEUED:
        move(session, job, TaskStatus.RUNNING, row=task, actor=SYSTEM_ACTOR, record=record)
    else:
        # A RUNNING task seen again was redelivered after a worker died: run it again.
        task.started_at = models.utcnow()
    task.attempts += 1
    if job.status == JobStatus.QUEUED:
        move(session, job, JobStatus.RUNNING, actor=SYSTEM_ACTOR, action="run")
    return ""


def _reportable(job: models.Job, task: models.Task) -> bool:
    """A report applies to a running task of a job not cancelled. A cancelled job's open
    tasks are cancelled in batches after CancelJob (tasks.settling), which alone writes them:
    a result coming meanwhile changes nothing, as it did when they were cancelled at once."""
    return task.status == TaskStatus.RUNNING and job.status != JobStatus.CANCELLED


def _stale(task: models.Task, report: FailureReport | ResultReport) -> bool:
    """Whether a failure, or a refused result, belongs to an earlier attempt than the task's
    latest: a worker that stalled past its ack deadline while another, given the redelivered
    message, began the task again. Its failure must not fail or requeue that run (a late
    honest result still counts: a result is the task's answer, whichever attempt found it)."""
    return report.attempt != 0 and report.attempt != task.attempts


def superseded(applied: bool, status: str) -> bool:
    """Whether a report that did not apply was of an earlier attempt than its task's latest:
    the only report a task still RUNNING does not apply (a cancelled job's tasks answer
    CANCELLED). Another delivery of the task's message runs it, and JetStream settles a
    message, not one delivery of it: the worker of the earlier attempt must leave the
    message alone, or its ack, nak or term would settle that run's."""
    return not applied and status == TaskStatus.RUNNING


def _log_stale_refusal(report: ResultReport) -> None:
    """Say that a refused result changed nothing. Not why it was refused: the reason can
    quote what the worker sent (a field's name, a number), and the worker is told it."""
    log.warning(
        "refused result of %s, attempt %d, left to the task's later attempt",
        names.task_name(report.job_id, report.task_id),
        report.attempt,
    )


def _succeed(session: AsyncSession, job: models.Job, task: models.Task, *, record: bool) -> None:
    """A running task's result came: SUCCEEDED (the values are stored by
    `record_extractions`, a batch's in a few statements; the caller counts it on the job
    once it holds the job's row, and observes it once committed)."""
    move(session, job, TaskStatus.SUCCEEDED, row=task, actor=SYSTEM_ACTOR, record=record)
    task.last_error = ""


def _check_class(failure_class: str) -> None:
    if failure_class not in FAILURE_CLASSES:
        raise InvalidArgument("failure_class must be RETRYABLE, PERMANENT or EXHAUSTED")


def _fail(
    session: AsyncSession,
    job: models.Job,
    task: models.Task,
    failure_class: str,
    error: str,
    record: bool,
) -> TaskStatus:
    """A running task's failure came: QUEUED again when worth another attempt (the worker
    delays the redelivery), else FAILED. Returns the task's status; the caller counts a
    failed task on the job once it holds the job's row, and observes it once committed."""
    target = TaskStatus.QUEUED if failure_class == "RETRYABLE" else TaskStatus.FAILED
    move(
        session,
        job,
        target,
        row=task,
        actor=SYSTEM_ACTOR,
        message=f"{failure_class}: {error}",
        record=record,
    )
    task.last_error = error[:MAX_ERROR]
    if target == TaskStatus.FAILED:
        task.failure = failure_class
    return target


def _extraction(task: models.Task, report: ResultReport) -> Extraction:
    skipped = [
        {
            "file": str(s.get("file", ""))[:32],
            "path": str(s.get("path", ""))[:MAX_PATH],
            "reason": str(s.get("reason", ""))[:MAX_ERROR],
        }
        for s in report.skipped_files
    ]
    assessments = {
        k: review.clean(v) for k, v in (report.assessments or {}).items() if k in report.values
    }
    if skipped:
        # A value not found may be printed in a file left out: its emptiness is not checked.
        for name, assessment in assessments.items():
            if report.values.get(name) is None:
                assessment[review.FILE_SKIPPED] = True
    return Extraction(
        task=task,
        values=report.values,
        value_sources=report.value_sources,
        input_tokens=max(0, report.input_tokens),
        output_tokens=max(0, report.output_tokens),
        extractor=report.extractor[:MAX_EXTRACTOR],
        assessments=assessments,
        skipped_files=skipped,
    )


def _progress_event(session: AsyncSession, job: models.Job, to: TaskStatus, message: str) -> None:
    """One event for a batch of task moves (the tasks' rows keep their own times)."""
    record_event(
        session,
        job,
        kind="tasks.progress",
        actor=SYSTEM_ACTOR,
        subject=names.job_name(job.id),
        to_status=to,
        message=message,
    )


async def _reported_jobs(
    session: AsyncSession, keys: Sequence[tuple[str, str]], *, job_first: bool
) -> AsyncIterator[tuple[models.Job, list[int], dict[str, models.Task]]]:
    """A report batch's jobs in `_by_job`'s fixed order (so batches never deadlock), each
    with the indexes of its reports and its reported tasks, the running ones' rows locked;
    jobs that no longer exist are skipped. Job-last (`job_first=False`) the job is read
    without a lock, and the caller locks it with `_lock_again` after its writes; job
    first, it is locked right after its tasks (_LOCK_ORDER both ways)."""
    for job_id, indexes in _by_job(keys):
        job = None
        if not job_first:
            job = await session.scalar(select(models.Job).where(models.Job.id == job_id))
        tasks = await _tasks(session, job_id, {keys[i][1] for i in indexes}, lock=RUNNING)
        if job_first:
            job = await locked_job(session, job_id)
        if job is None:
            continue
        yield job, indexes, tasks


class _JobMoved(Exception):
    """A report batch's job was cancelled or deleted between its first read and its lock."""


async def _lock_again(session: AsyncSession, job: models.Job) -> None:
    """Lock the row of `job` (read before without a lock) and read it again: its counters
    as the last committed batch left them. Raises `_JobMoved` if it is gone or cancelled."""
    await session.flush()
    fresh = await session.scalar(
        select(models.Job)
        .where(models.Job.id == job.id)
        # FOR NO KEY UPDATE: the counters change, the key does not, so other batches'
        # rows that reference the job (their results, review rows) are not held up by it.
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if fresh is None or fresh.status == JobStatus.CANCELLED:
        raise _JobMoved(job.id)


def _by_job(keys: Sequence[tuple[str, str]]) -> list[tuple[str, list[int]]]:
    """Indexes of `keys` grouped by job id, jobs in one fixed order: two batches locking the
    same jobs lock them in the same order, so they never deadlock."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, (job_id, _) in enumerate(keys):
        groups[job_id].append(i)
    return sorted(groups.items())


async def _tasks(
    session: AsyncSession, job_id: str, task_ids: set[str], *, lock: frozenset[TaskStatus]
) -> dict[str, models.Task]:
    """The job's tasks among `task_ids`, the rows of those in a status of `lock` locked in
    id order (the order keeps two batches from deadlocking), the others read.

    A row another transaction changes is waited for and its status looked at again: one
    that left those statuses meanwhile is read as it is now, not locked; one that entered
    them meanwhile (a task begun) is locked in turn, as callers write only locked rows.
    Settled rows are never locked: a late report must not hold the row a retry or re-run
    waits for while holding the job's (_LOCK_ORDER)."""
    t = models.Task
    if not lock:
        query = (
            select(t)
            .where(t.job_id == job_id, t.id.in_(task_ids))
            .execution_options(populate_existing=True)
        )
        return {task.id: task for task in await session.scalars(query)}
    tasks: dict[str, models.Task] = {}
    todo = set(task_ids)
    while todo:
        locked = await session.scalars(
            select(t)
            .where(t.job_id == job_id, t.id.in_(todo), t.status.in_(sorted(lock)))
            .order_by(t.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        tasks |= {task.id: task for task in locked}
        todo -= tasks.keys()
        if not todo:
            break
        read = await session.scalars(
            select(t)
            .where(t.job_id == job_id, t.id.in_(todo))
            .execution_options(populate_existing=True)
        )
        rest = {task.id: task for task in read}
        tasks |= {i: task for i, task in rest.items() if task.status not in lock}
        todo = {i for i, task in rest.items() if task.status in lock}
    return tasks
