"""The hostile-archive corpus through the real ingest worker (NATS, the jobs service, storage):
every archive gets its expected verdict on the first delivery, nothing is written outside
the job's prefix or left behind unregistered, and the bytes written stay within the budget."""

from __future__ import annotations

import sqlite3
from collections import defaultdict

import nats
import pytest

from bytereview.core import streams
from bytereview.core.clients import worker_metadata
from bytereview.core.limits import MAX_FILES_PER_JOB
from bytereview.core.settings import Settings
from bytereview.core.storage import make_storage
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.ingest.budget import UnpackLimits
from services.ingest.unpack import CHUNK
from services.jobs import RunningJobsService
from tests import archives
from tests.conftest import USER
from tests.hostile_archives import corpus
from tests.services.ingest.test_worker import all_files, create, ingest_worker, wait_status
from tests.services.jobs.helpers import create_uploaded

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# Small, so that "too many entries" and the shared nesting budget need small archives only.
MAX_ENTRIES = 200


def _rows(settings: Settings, job_id: str) -> list[tuple[str, str | None, str, str]]:
    """(id, parent id, storage key, original path) of every file of the job, from the
    jobs service's own database: the API does not show storage keys."""
    path = settings.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        return list(
            db.execute(
                "SELECT id, parent_id, storage_key, original_path FROM source_files"
                " WHERE job_id = ?",
                (job_id,),
            )
        )


async def test_every_corpus_archive_gets_its_verdict_on_the_first_delivery(
    job_stub: jobs_grpc.JobServiceAsyncStub, settings: Settings, jobs: RunningJobsService
) -> None:
    cases = corpus(max_entries=MAX_ENTRIES)
    with ingest_worker(settings, jobs, {"BYTEREVIEW_INGEST_MAX_ENTRIES": str(MAX_ENTRIES)}):
        job = await create(job_stub, settings, {case.name: case.data for case in cases})
        await wait_status(job_stub, job, pb.Job.READY, timeout=180)
        nc = await nats.connect(settings.nats_url)
        try:
            spec = streams.ingest_queue(settings)
            js = nc.jetstream()
            consumer = await js.consumer_info(spec.stream, spec.durable)
            stream = await js.stream_info(spec.stream)
        finally:
            await nc.close()
    # First delivery: as many deliveries as messages ever published (a nak, a timeout or a
    # redelivery would make more), and none outstanding.
    assert consumer.delivered is not None
    assert stream.state.last_seq == consumer.delivered.consumer_seq
    assert consumer.num_ack_pending == 0

    files = await all_files(job_stub, job)
    by_path: dict[str, list[pb.SourceFile]] = defaultdict(list)
    for file in files:
        by_path[file.original_path].append(file)
    status = pb.SourceFile.Status.Name
    for case in cases:
        [upload] = by_path[case.name]
        assert (status(upload.status), case.name) == (case.expect.status, case.name)
        assert case.expect.error in upload.error, (case.name, upload.error)
        for path, want, phrase in case.expect.files:
            candidates = by_path[f"{case.name}/{path}"]
            match = next(
                (f for f in candidates if status(f.status) == want and phrase in f.error), None
            )
            assert match is not None, (case.name, path, want, phrase, candidates)
            candidates.remove(match)
        inside = [f for f in files if f.original_path.startswith(f"{case.name}/")]
        if case.expect.max_files is not None:
            assert len(inside) <= case.expect.max_files, case.name

    # Storage: only the job's prefix; every entry object belongs to a registered file;
    # no partial objects; bytes written per upload within its budget.
    job_id = job.split("/")[1]
    storage = make_storage(settings)
    keys = set(storage.list_keys(""))
    assert all(key.startswith(f"jobs/{job_id}/") for key in keys)
    assert settings.storage_dir is not None
    assert not list(settings.storage_dir.rglob("*.partial"))
    rows = _rows(settings, job_id)
    registered = {key for _, _, key, _ in rows}
    entries = {key for key in keys if key.startswith(f"jobs/{job_id}/entries/")}
    assert entries <= registered, entries - registered
    children: dict[str | None, list[tuple[str, str]]] = defaultdict(list)
    for file_id, parent, key, _ in rows:
        children[parent].append((file_id, key))
    limits = UnpackLimits()
    sizes = {case.name: len(case.data) for case in cases}
    for file_id, parent, _, path in rows:
        if parent is not None:
            continue
        written = 0
        stack = [file_id]
        while stack:
            for child, key in children[stack.pop()]:
                written += storage.size(key) or 0
                stack.append(child)
        budget = limits.max_ratio * sizes[path] + limits.ratio_allowance_bytes + CHUNK
        assert written <= budget, (path, written, budget)


async def test_the_job_file_cap_holds_after_unpacking(
    job_stub: jobs_grpc.JobServiceAsyncStub,
    worker_stub: worker_grpc.JobWorkerServiceAsyncStub,
    settings: Settings,
) -> None:
    """Unpacked entries count towards the job's 10,000 files: the jobs service registers
    what fits and says why it refused the rest (the worker then deletes their bytes)."""
    created = await create_uploaded(job_stub, settings, USER, {"a.zip": archives.PNG})
    archive = created.upload_targets[0].file
    job_id = archive.split("/")[1]
    metadata = worker_metadata(settings)

    def batch(start: int, count: int) -> worker_pb.ReportArchiveEntriesRequest:
        return worker_pb.ReportArchiveEntriesRequest(
            archive=archive,
            entries=[
                worker_pb.ArchiveEntry(
                    index=i,
                    path=f"{i}.png",
                    storage_key=f"jobs/{job_id}/entries/x/{i}",
                    size_bytes=1,
                    status=pb.SourceFile.READY,
                    media_type="image/png",
                )
                for i in range(start, start + count)
            ],
        )

    first = await worker_stub.ReportArchiveEntries(batch(0, 1000), metadata=metadata)
    assert (first.created, first.refused) == (1000, "")
    for start in range(1000, MAX_FILES_PER_JOB, 1000):
        await worker_stub.ReportArchiveEntries(batch(start, 1000), metadata=metadata)
    # The upload itself is one of the job's files: 9,999 entries fit.
    last = await worker_stub.ReportArchiveEntries(batch(9000, 1000), metadata=metadata)
    assert last.created == 0  # the repeat of a registered batch registers nothing new...
    assert last.files[-1] == ""  # ...and the last entry never fitted
    assert "limit of 10000 files" in last.refused
    over = await worker_stub.ReportArchiveEntries(batch(10_000, 5), metadata=metadata)
    assert (over.created, list(over.files)) == (0, [""] * 5)
    # A repeated report names the files it registered before.
    again = await worker_stub.ReportArchiveEntries(batch(0, 3), metadata=metadata)
    assert list(again.files) == list(first.files[:3])
    job = await job_stub.GetJob(jobs_pb.GetJobRequest(name=f"jobs/{job_id}"), metadata=USER)
    assert job.counters.files_total == MAX_FILES_PER_JOB


async def test_nested_archives_left_unpacked_fail_with_their_archive(
    job_stub: jobs_grpc.JobServiceAsyncStub,
    worker_stub: worker_grpc.JobWorkerServiceAsyncStub,
    settings: Settings,
) -> None:
    """A worker registers a nested archive as ANALYZING and settles it itself; if the
    archive holding it is settled without that (a dead letter), it must not stay ANALYZING
    and keep the job from READY."""
    created = await create_uploaded(job_stub, settings, USER, {"a.zip": archives.PNG})
    job = created.job.name
    await job_stub.FinalizeUploads(jobs_pb.FinalizeUploadsRequest(name=job), metadata=USER)
    archive = created.upload_targets[0].file
    metadata = worker_metadata(settings)
    nested = worker_pb.ArchiveEntry(
        index=0,
        path="inner.zip",
        storage_key=f"{job}/entries/x/0",
        size_bytes=22,
        status=pb.SourceFile.ANALYZING,
        media_type="application/zip",
    )
    registered = await worker_stub.ReportArchiveEntries(
        worker_pb.ReportArchiveEntriesRequest(archive=archive, entries=[nested]),
        metadata=metadata,
    )
    [inner] = registered.files
    assert not registered.queued  # the worker unpacks it: no message of its own
    await worker_stub.ReportArchiveEntries(
        worker_pb.ReportArchiveEntriesRequest(
            archive=inner, entries=[nested]
        ),  # a grandchild, also ANALYZING
        metadata=metadata,
    )
    await worker_stub.ReportFileAnalysis(
        worker_pb.ReportFileAnalysisRequest(
            file=archive, status=pb.SourceFile.FAILED, error="gave up"
        ),
        metadata=metadata,
    )
    ready = await wait_status(job_stub, job, pb.Job.READY, timeout=10)
    files = await all_files(job_stub, job)
    assert sorted(pb.SourceFile.Status.Name(f.status) for f in files) == ["FAILED"] * 3
    assert ready.counters.files_failed == 3
