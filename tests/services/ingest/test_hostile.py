"""The hostile-archive corpus through the real ingest worker (NATS, the jobs service, storage):
every archive gets its expected verdict on the first delivery, nothing is written outside
the job's prefix or left behind unregistered, and the bytes written stay within the budget."""

from __future__ import annotations

import sqlite3
from collections import defaultdict

import nats
import pytest

from bytereview.core import streams
from bytereview.core.settings import Settings
from bytereview.core.storage import make_storage
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from services.ingest.budget import UnpackLimits
from services.ingest.unpack import CHUNK
from services.jobs.server import RunningJobsService
from tests.hostile_archives import corpus
from tests.services.ingest.test_worker import all_files, create, ingest_worker, wait_status

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
    job_stub: jobs_grpc.JobServiceStub, settings: Settings, jobs: RunningJobsService
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
