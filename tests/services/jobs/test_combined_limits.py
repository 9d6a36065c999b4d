"""A combined folder too big for one call: StartJob refuses the job (FAILED_PRECONDITION),
naming the folder and the limit, and queues nothing; extracted file by file (a folder
rule) the same folder starts. Through the real jobs service, on SQLite and PostgreSQL.

Before the limit, a combined folder of any size was one task: 10,000 images in one call,
past the worker's 30-minute run time, delivered again and again."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest

from bytereview.core.limits import MAX_FILES_PER_COMBINED_TASK, MAX_PAGES_PER_COMBINED_TASK
from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from tests.conftest import USER
from tests.services.jobs.helpers import FIELDS, analysed_job, one_folder_too_many

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def _refused_start(job_stub: JobStub, job: str, *, mentions: list[str]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()
    for text in mentions:
        assert text in (err.value.details() or ""), err.value.details()
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.status == pb.Job.READY
    listed = await job_stub.ListTasks(jobs_pb.ListTasksRequest(parent=job), metadata=USER)
    assert not listed.tasks


async def test_a_folder_of_too_many_files_is_refused_combined_and_runs_file_by_file(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    many = MAX_FILES_PER_COMBINED_TASK + 1
    job = await analysed_job(
        job_stub,
        worker_stub,
        settings,
        one_folder_too_many(),
        fields=FIELDS,
        task_mode=pb.TASK_MODE_COMBINED,
    )
    await _refused_start(
        job_stub,
        job,
        mentions=["'scans'", f"{many} files", f"at most {MAX_FILES_PER_COMBINED_TASK}"],
    )
    # The same folder, file by file: the job starts, the other folder still combined.
    await job_stub.ConfigureJob(
        jobs_pb.ConfigureJobRequest(
            name=job,
            fields=FIELDS,
            task_mode=pb.TASK_MODE_COMBINED,
            folder_rules=[pb.FolderRule(folder="scans", task_mode=pb.TASK_MODE_INDIVIDUAL)],
        ),
        metadata=USER,
    )
    started = await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    assert started.counters.tasks_total == many + 1


async def test_a_folder_of_too_many_pages_is_refused_combined(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    half = MAX_PAGES_PER_COMBINED_TASK // 2 + 1
    job = await analysed_job(
        job_stub,
        worker_stub,
        settings,
        {"book/part1.pdf": half, "book/part2.pdf": half},
        fields=FIELDS,
        task_mode=pb.TASK_MODE_COMBINED,
    )
    await _refused_start(
        job_stub,
        job,
        mentions=["'book'", f"{2 * half} pages", f"at most {MAX_PAGES_PER_COMBINED_TASK}"],
    )
    # File by file, the same files start.
    await job_stub.ConfigureJob(
        jobs_pb.ConfigureJobRequest(name=job, fields=FIELDS, task_mode=pb.TASK_MODE_INDIVIDUAL),
        metadata=USER,
    )
    started = await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    assert started.counters.tasks_total == 2
