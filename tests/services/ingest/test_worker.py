"""The ingest worker as a real process: NATS, the jobs service, storage; and kill -9 mid-archive."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bytereview.core import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs import RunningJobsService
from tests import archives
from tests.conftest import USER
from tests.services.jobs.helpers import create_uploaded
from tests.small_disk import small_disk

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@contextmanager
def ingest_worker(
    settings: Settings, jobs: RunningJobsService, extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    env.update(
        {
            "BYTEREVIEW_ENV": "dev",
            "BYTEREVIEW_NATS_URL": settings.nats_url,
            "BYTEREVIEW_JOBS_ADDR": f"127.0.0.1:{jobs.port}",
            # Port 0: nothing here calls the process's InspectArchive server.
            "BYTEREVIEW_INGEST_ADDR": "127.0.0.1:0",
            "BYTEREVIEW_STORAGE_DIR": str(settings.storage_dir),
            "BYTEREVIEW_DATA_DIR": str(settings.data_dir),
            "BYTEREVIEW_ACK_WAIT_SECONDS": "3",
            "BYTEREVIEW_DRAIN_GRACE_SECONDS": "3",
            **(extra_env or {}),
        }
    )
    process = subprocess.Popen([sys.executable, "-m", "launcher.cli", "ingest"], env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


async def create(
    job_stub: jobs_grpc.JobServiceAsyncStub, settings: Settings, files: dict[str, bytes]
) -> str:
    created: jobs_pb.CreateJobResponse = await create_uploaded(job_stub, settings, USER, files)
    await job_stub.FinalizeUploads(
        jobs_pb.FinalizeUploadsRequest(name=created.job.name), metadata=USER
    )
    return str(created.job.name)


async def wait_status(
    job_stub: jobs_grpc.JobServiceAsyncStub,
    job: str,
    status: pb.Job.Status.ValueType,
    timeout: float = 90,
) -> pb.Job:
    deadline = time.monotonic() + timeout
    while True:
        got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
        if got.status == status:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{job} is {pb.Job.Status.Name(got.status)}, not {pb.Job.Status.Name(status)}"
            )
        await asyncio.sleep(0.2)


async def all_files(job_stub: jobs_grpc.JobServiceAsyncStub, job: str) -> list[pb.SourceFile]:
    out: list[pb.SourceFile] = []
    token = ""
    while True:
        page = await job_stub.ListFiles(
            jobs_pb.ListFilesRequest(parent=job, page_size=1000, page_token=token), metadata=USER
        )
        out.extend(page.files)
        token = page.next_page_token
        if not token:
            return out


async def test_analysis_and_unpacking(
    job_stub: jobs_grpc.JobServiceAsyncStub, settings: Settings, jobs: RunningJobsService
) -> None:
    inner = archives.zip_bytes({"x.pdf": archives.invoice("X"), "y.pdf": archives.invoice("Y")})
    files = {
        "plain.pdf": archives.invoice("P"),
        "bundle.zip": archives.zip_bytes(
            {"march/a.pdf": archives.invoice("A"), "inner.zip": inner, "__MACOSX/._a": b"j"}
        ),
        "evil.zip": archives.zip_bytes({"../../etc/passwd.pdf": b"x"}),
        "broken.pdf": b"%PDF-1.4\n this is not really a pdf",
        "photo.jpg": b"\xff\xd8\xff\xe0" + b"\0" * 100,
        "report.docx": b"PK\x03\x04" + b"\0" * 50,  # a zip signature, but not a readable archive
        "notes.txt": b"just text",
    }
    with ingest_worker(settings, jobs):
        job = await create(job_stub, settings, files)
        ready = await wait_status(job_stub, job, pb.Job.READY)
    by_path = {f.original_path: f for f in await all_files(job_stub, job)}
    status_name = pb.SourceFile.Status.Name
    assert {p: status_name(f.status) for p, f in by_path.items()} == {
        "plain.pdf": "READY",
        "bundle.zip": "UNPACKED",
        "bundle.zip/march/a.pdf": "READY",
        "bundle.zip/inner.zip": "UNPACKED",
        "bundle.zip/inner.zip/x.pdf": "READY",
        "bundle.zip/inner.zip/y.pdf": "READY",
        "evil.zip": "FAILED",
        "broken.pdf": "FAILED",
        "photo.jpg": "READY",
        "report.docx": "FAILED",
        "notes.txt": "UNSUPPORTED",
    }
    assert "outside the archive" in by_path["evil.zip"].error
    assert "damaged" in by_path["broken.pdf"].error
    assert by_path["plain.pdf"].page_count == 1
    assert by_path["plain.pdf"].sha256
    assert by_path["plain.pdf"].media_type == "application/pdf"
    assert by_path["bundle.zip/inner.zip/x.pdf"].folder == "bundle.zip/inner.zip"
    assert ready.counters.files_ready == 5


@pytest.mark.settings(max_deliver=2)
async def test_a_pdf_larger_than_the_temporary_disk_fails_alone_at_once_saying_so(
    job_stub: jobs_grpc.JobServiceAsyncStub, settings: Settings, jobs: RunningJobsService
) -> None:
    """The worker's temporary directory (a bounded emptyDir in Kubernetes) is smaller than
    a PDF copied there for pdfium: no attempt can copy it, so its file fails on the first,
    saying why; the worker lives on and the next PDF is read."""
    big = archives.invoice("BIG") + b"%" + b"x" * (3 * 1024 * 1024)  # after %%EOF: still a PDF
    with (
        small_disk(2 * 1024 * 1024) as tmp,
        ingest_worker(settings, jobs, {"TMPDIR": tmp, "BYTEREVIEW_MAX_DELIVER": "5"}) as worker,
    ):
        job = await create(job_stub, settings, {"big.pdf": big, "small.pdf": archives.invoice("S")})
        await wait_status(job_stub, job, pb.Job.READY)
        assert worker.poll() is None, "the worker ended"
    by_path = {f.original_path: f for f in await all_files(job_stub, job)}
    assert pb.SourceFile.Status.Name(by_path["big.pdf"].status) == "FAILED"
    error = by_path["big.pdf"].error
    assert "larger than the worker's temporary disk can hold (2.0 MiB)" in error, error
    assert pb.SourceFile.Status.Name(by_path["small.pdf"].status) == "READY"
    assert by_path["small.pdf"].page_count == 1


async def test_a_temporary_disk_full_of_other_files_is_waited_out(
    job_stub: jobs_grpc.JobServiceAsyncStub, settings: Settings, jobs: RunningJobsService
) -> None:
    """The same disk full of other files (copies in flight, the node's own): a PDF that
    fits once they are gone is not failed, whatever its attempts (one here): the worker
    waits, holding it, and reads it when the disk has room."""
    pdf = archives.invoice("FITS") + b"%" + b"x" * (1024 * 1024)
    with (
        small_disk(2 * 1024 * 1024) as tmp,
        ingest_worker(settings, jobs, {"TMPDIR": tmp, "BYTEREVIEW_MAX_DELIVER": "1"}) as worker,
    ):
        filler = Path(tmp) / "other-files"
        filler.write_bytes(b"\0" * (1536 * 1024))
        job = await create(job_stub, settings, {"fits.pdf": pdf})
        await asyncio.sleep(5)  # the worker has met the full disk, more than once
        [waiting] = await all_files(job_stub, job)
        assert pb.SourceFile.Status.Name(waiting.status) != "FAILED", waiting.error
        assert worker.poll() is None, "the worker ended"
        filler.unlink()
        await wait_status(job_stub, job, pb.Job.READY)
    [read] = await all_files(job_stub, job)
    assert (pb.SourceFile.Status.Name(read.status), read.page_count) == ("READY", 1)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
async def test_worker_stopped_mid_archive_gives_a_complete_duplicate_free_file_list(
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    jobs: RunningJobsService,
    sig: int,
) -> None:
    count = 2000
    data = archives.zip_bytes({f"batch/{i:05d}.png": archives.PNG for i in range(count)})
    with ingest_worker(settings, jobs) as first:
        job = await create(job_stub, settings, {"big.zip": data})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
            if 100 < got.counters.files_total < count:
                break
            await asyncio.sleep(0.05)
        stopped_at = time.monotonic()
        # SIGKILL: no drain, no nak, the message is redelivered after AckWait.
        # SIGTERM: the worker stops fetching, gives the archive its grace period, then naks it.
        first.send_signal(sig)
        code = first.wait(timeout=30)
        assert got.counters.files_total < count + 1, "the archive finished before the signal"
        if sig == signal.SIGTERM:
            assert code == 0
            assert time.monotonic() - stopped_at < 3 + 5  # grace period plus shutdown
    with ingest_worker(settings, jobs):
        done = await wait_status(job_stub, job, pb.Job.READY, timeout=120)
    files = await all_files(job_stub, job)
    paths = [f.original_path for f in files if f.parent_archive]
    assert len(paths) == count
    assert len(set(paths)) == count
    assert done.counters.files_total == count + 1
    assert done.counters.files_ready == count
