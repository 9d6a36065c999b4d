"""How big a combined task may be: a folder's files all go to the model in one call.

A combined folder of more than MAX_FILES_PER_COMBINED_TASK files or
MAX_PAGES_PER_COMBINED_TASK pages cannot be extracted as one task: its call could pass the
worker's maximum run time (task_max_run_seconds, 30 minutes) and the task be delivered
again and again, or pass what the model reads in one request. StartJob refuses such a job
(FAILED_PRECONDITION) naming the first such folder and the limit, before anything is queued
or billed: the user extracts that folder file by file (a folder rule) or splits it, and
starts again. Failing the folder's task at run time instead would spend the rest of the job
and leave a result the user cannot fix without running the job again (docs/DESIGN.md,
"Combined folders").
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import FailedPrecondition
from bytereview.core.limits import MAX_FILES_PER_COMBINED_TASK, MAX_PAGES_PER_COMBINED_TASK
from services.jobs.domain.status import FileStatus, TaskMode
from services.jobs.domain.tasks.plan import mode_of, rules_from_dicts
from services.jobs.store import models


def folder_label(folder: str) -> str:
    return repr(folder) if folder else "the top level"


async def check_combined_sizes(session: AsyncSession, job: models.Job) -> None:
    """FailedPrecondition naming the first combined folder (in path order) past the limits.

    One grouped query over the job's usable files: a folder and its files and pages."""
    default = TaskMode.COMBINED if job.task_mode == TaskMode.COMBINED else TaskMode.INDIVIDUAL
    rules = {r.folder: r.task_mode for r in rules_from_dicts(job.folder_rules)}
    if default != TaskMode.COMBINED and TaskMode.COMBINED not in rules.values():
        return
    f = models.SourceFile
    rows = await session.execute(
        select(f.folder, func.count(), func.coalesce(func.sum(f.page_count), 0))
        .where(f.job_id == job.id, f.status == FileStatus.READY)
        .group_by(f.folder)
        .order_by(f.folder)
    )
    for folder, files, pages in rows:
        if mode_of(folder, default, rules) != TaskMode.COMBINED:
            continue
        if files > MAX_FILES_PER_COMBINED_TASK:
            too_many = f"{files} files; at most {MAX_FILES_PER_COMBINED_TASK}"
        elif pages > MAX_PAGES_PER_COMBINED_TASK:
            too_many = f"{pages} pages; at most {MAX_PAGES_PER_COMBINED_TASK}"
        else:
            continue
        raise FailedPrecondition(
            f"folder {folder_label(folder)} is too big to extract combined ({too_many} "
            "go to the model together): extract it file by file (a folder rule with "
            "TASK_MODE_INDIVIDUAL) or split it into smaller folders"
        )
