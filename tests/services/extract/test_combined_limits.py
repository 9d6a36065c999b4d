"""A combined task of a folder too big for one call, in a job started before StartJob
checked folder sizes: the extract worker fails it at once, saying why, instead of a call
that could pass the maximum run time on every delivery. Real NATS, the real jobs service
and the real extract worker (offline extractor)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bytereview.core import Settings
from bytereview.core.limits import MAX_FILES_PER_COMBINED_TASK
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs import RunningJobsService
from services.jobs.domain.tasks import combined
from tests.conftest import USER
from tests.services.extract.test_worker import (
    FIELDS,
    finished,
    running_worker,
    tasks,
    worker_settings,
)
from tests.services.jobs.helpers import analysed_job, one_folder_too_many

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_a_combined_task_of_too_many_files_fails_at_once_saying_why(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = await analysed_job(
        job_stub,
        worker_stub,
        settings,
        one_folder_too_many(),
        fields=FIELDS,
        task_mode=pb.TASK_MODE_COMBINED,
    )
    # The jobs service as it was before its check: the job starts with the big folder.
    monkeypatch.setattr(combined, "MAX_FILES_PER_COMBINED_TASK", 10**6)
    await job_stub.StartJob(jobs_pb.StartJobRequest(name=job), metadata=USER)
    async with running_worker(worker_settings(settings, jobs, max_deliver=5)):
        assert (await finished(job_stub, job)).status == pb.Job.PARTIALLY_COMPLETED
    by_folder = {t.folder: t for t in await tasks(job_stub, job)}
    big = by_folder["scans"]
    assert big.status == pb.Task.FAILED
    assert big.attempts == 1
    assert "folder 'scans' is too big to extract combined" in big.last_error
    assert f"at most {MAX_FILES_PER_COMBINED_TASK}" in big.last_error
    assert by_folder["receipts"].status == pb.Task.SUCCEEDED
