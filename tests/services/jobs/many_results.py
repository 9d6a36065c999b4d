"""A completed job of thousands of results, written as rows: for the tests of exports (the
jobs service's and the gateway's), where only paging and content matter, not the workflow
that produced them (tested elsewhere)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import insert

from services.jobs import RunningJobsService
from services.jobs.store import models
from tests.services.jobs.helpers import FIELDS, ready_job

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

EXPORTED = 3000


async def job_with_results(
    job_stub: JobStub, worker_stub: WorkerStub, jobs: RunningJobsService, count: int = EXPORTED
) -> str:
    """The job's name; its results are `count` rows of FIELDS' values, one file each."""
    job = await ready_job(job_stub, worker_stub, jobs.ctx.settings, files=1)
    job_id = job.split("/")[1]
    async with jobs.ctx.transaction() as session:
        for position, field in enumerate(FIELDS):
            session.add(
                models.JobField(
                    job_id=job_id, position=position, name=field.name, data_type_id=field.data_type
                )
            )
        await session.flush()
        # Core multi-row INSERTs (the ORM's unit of work over 12,000 objects was most of the
        # test's time), rows others point to first.
        ids = [(models.new_id(), models.new_id()) for _ in range(count)]
        await session.execute(
            insert(models.SourceFile),
            [
                {
                    "id": file_id,
                    "job_id": job_id,
                    "original_path": f"batch/{i:05d} ünïcode.pdf",
                    "storage_key": f"jobs/{job_id}/uploads/{file_id}",
                    "status": "READY",
                }
                for i, (file_id, _) in enumerate(ids)
            ],
        )
        await session.execute(
            insert(models.Task),
            [
                {"id": task_id, "job_id": job_id, "position": i, "mode": "x", "status": "SUCCEEDED"}
                for i, (_, task_id) in enumerate(ids)
            ],
        )
        await session.execute(
            insert(models.TaskFile),
            [{"task_id": task_id, "position": 0, "file_id": file_id} for file_id, task_id in ids],
        )
        await session.execute(
            insert(models.Result),
            [
                {
                    "job_id": job_id,
                    "task_id": task_id,
                    "position": i,
                    "values": {"invoice_number": f"INV-{i}" + "x" * 80, "total": f"{i}.50"},
                    "edited": i % 2 == 0,
                }
                for i, (_, task_id) in enumerate(ids)
            ],
        )
    return job
