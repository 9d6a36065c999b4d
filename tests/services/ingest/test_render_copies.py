"""RenderPage's local copies (services/ingest/local_copies.py): paging through a stored file
downloads it once. Through a real ingest server (its storage the real local one, counting
what it opens for reading) and the real jobs service; the cache's own rules against the
real storage."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import grpc
import pytest
from PIL import Image

from bytereview.core import Settings, Unavailable
from bytereview.core.settings import DEV_SIGNING_SECRET
from bytereview.core.spool import SpoolFull
from bytereview.core.storage import LocalStorage
from bytereview.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.ingest import local_copies, render, server
from services.ingest.local_copies import IDLE_SECONDS, LocalCopies
from services.ingest.server import ingest_server
from services.ingest.unpack import UnpackLimits
from tests.identity import IdentityProvider
from tests.pdfs import text_pdf
from tests.services.ingest.test_inspect import ingest
from tests.services.ingest.test_render import analysed, image_bytes, refused
from tests.services.ingest.test_render import render as draw
from tests.small_disk import small_tmp

__all__ = ["ingest"]

# The jobs service's database is not what these tests are about.
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
KIB = 1024
PREFIX = "bytereview-copies-"


class CountingStorage(LocalStorage):
    """The real local storage, counting the objects opened for reading (in GCS, each one a
    download). While `hold` is clear, a read waits for it before it starts."""

    def __init__(self, root: Path) -> None:
        super().__init__(
            root=root, public_url="http://x", secret=DEV_SIGNING_SECRET, ttl_seconds=60
        )
        self.reads: Counter[str] = Counter()
        self.hold = threading.Event()
        self.hold.set()

    def open_read(self, key: str) -> BinaryIO:
        self.reads[key] += 1
        self.hold.wait(timeout=60)
        return super().open_read(key)

    def put(self, key: str, data: bytes) -> str:
        with self.open_write(key) as handle:
            handle.write(data)
        return key


def padded_pdf(text: str, size: int) -> bytes:
    """A one-page PDF of about `size` bytes (bytes after %%EOF: still a PDF)."""
    pdf = text_pdf([text])
    return pdf + b"%" + b"x" * max(0, size - len(pdf) - 1)


def copy_dirs(where: str) -> set[str]:
    return {name for name in os.listdir(where) if name.startswith(PREFIX)}


# -- Through the server ---------------------------------------------------------------------


@dataclass
class Served:
    stub: ingest_grpc.IngestServiceAsyncStub
    storage: CountingStorage
    tmp: str  # the process's temporary directory while it serves


@pytest.fixture
async def served(
    settings: Settings,
    worker_stub: worker_grpc.JobWorkerServiceAsyncStub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Served]:
    """A second ingest server, over the same stored files as the `ingest` fixture's workers
    (which analyse them), whose storage counts its reads."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # A temporary directory of its own: the system's is shared with tests running alongside.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    assert settings.storage_dir is not None
    storage = CountingStorage(settings.storage_dir)
    cfg = settings.model_copy(update={"ingest_addr": "127.0.0.1:0"})
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    async with (
        ingest_server(
            cfg,
            storage=storage,
            limits=UnpackLimits.from_settings(cfg),
            jobs=worker_stub,
            listening=port.set_result,
        ),
        grpc.aio.insecure_channel(f"127.0.0.1:{await port}") as channel,
    ):
        yield Served(ingest_grpc.IngestServiceStub(channel), storage, str(tmp))
    # The service stopped: its copies went with it.
    assert copy_dirs(str(tmp)) == set()


@SQLITE
async def test_paging_through_a_pdf_downloads_it_once(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    served: Served,
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    idp: IdentityProvider,
) -> None:
    alice = idp.metadata("alice")
    files = await analysed(
        job_stub,
        settings,
        alice,
        {"doc.pdf": text_pdf(["page"], pages=3), "scan.tiff": image_bytes((30, 40), "TIFF", 2)},
    )
    for page in (1, 2, 3, 2):
        headers, data = await draw(served.stub, alice, file=files["doc.pdf"], page=page, width=300)
        assert headers["x-http-x-page-count"] == "3"
        assert Image.open(io.BytesIO(data)).width == 300
    for page in (1, 2):
        _, data = await draw(served.stub, alice, file=files["scan.tiff"], page=page)
        assert Image.open(io.BytesIO(data)).size == (30, 40)
    assert sorted(served.storage.reads.values()) == [1, 1], served.storage.reads
    # Kept in the service's temporary directory, until it stops (the fixture checks).
    [directory] = copy_dirs(served.tmp)
    assert len(os.listdir(Path(served.tmp) / directory)) == 1 + 2  # the owner's lock file


@SQLITE
async def test_pages_asked_at_once_wait_for_one_download(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    served: Served,
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    idp: IdentityProvider,
) -> None:
    alice = idp.metadata("alice")
    files = await analysed(job_stub, settings, alice, {"doc.pdf": text_pdf(["x"], pages=2)})
    served.storage.hold.clear()  # the first download waits until both pages are asked
    first = asyncio.create_task(draw(served.stub, alice, file=files["doc.pdf"], page=1))
    deadline = time.monotonic() + 30
    while not served.storage.reads:
        assert time.monotonic() < deadline, "the first page never read its file"
        await asyncio.sleep(0.01)
    second = asyncio.create_task(draw(served.stub, alice, file=files["doc.pdf"], page=2))
    await asyncio.sleep(0.5)  # time for the second to ask for its own download, were it to
    assert not second.done()
    served.storage.hold.set()
    drawn = await asyncio.wait_for(asyncio.gather(first, second), timeout=60)
    assert [headers["x-http-x-page-count"] for headers, _ in drawn] == ["2", "2"]
    assert list(served.storage.reads.values()) == [1]


@pytest.fixture
def fast_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "EXPIRY_SECONDS", 0.1)
    monkeypatch.setattr(local_copies, "IDLE_SECONDS", 0.5)


@SQLITE
async def test_the_service_deletes_copies_left_unused(
    fast_expiry: None,
    ingest: ingest_grpc.IngestServiceAsyncStub,
    served: Served,
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    idp: IdentityProvider,
) -> None:
    alice = idp.metadata("alice")
    files = await analysed(job_stub, settings, alice, {"doc.pdf": text_pdf(["x"])})
    await draw(served.stub, alice, file=files["doc.pdf"])
    [directory] = copy_dirs(served.tmp)
    deadline = time.monotonic() + 30
    while len(os.listdir(Path(served.tmp) / directory)) > 1:  # the owner's lock file
        assert time.monotonic() < deadline, "the copy was never expired"
        await asyncio.sleep(0.1)


@SQLITE
async def test_a_deleted_jobs_file_is_not_shown_from_its_kept_copy(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    served: Served,
    job_stub: jobs_grpc.JobServiceAsyncStub,
    settings: Settings,
    idp: IdentityProvider,
) -> None:
    alice = idp.metadata("alice")
    files = await analysed(job_stub, settings, alice, {"doc.pdf": text_pdf(["secret"])})
    pdf = files["doc.pdf"]
    await draw(served.stub, alice, file=pdf)
    job = "/".join(pdf.split("/")[:2])
    await job_stub.DeleteJob(jobs_pb.DeleteJobRequest(name=job), metadata=alice)
    # The jobs service refuses the file before any copy is looked at.
    err = await refused(served.stub, alice, file=pdf)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert list(served.storage.reads.values()) == [1]


# -- The cache's own rules ------------------------------------------------------------------


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return str(tmp)


@pytest.fixture
def storage(tmp_path: Path) -> CountingStorage:
    return CountingStorage(tmp_path / "storage")


@pytest.fixture
def copies(storage: CountingStorage, private_tmp: str) -> Iterator[LocalCopies]:
    kept = LocalCopies(storage, max_bytes=250 * KIB)
    yield kept
    kept.close()
    assert copy_dirs(private_tmp) == set()


def files_in(copies: LocalCopies) -> int:
    return len(os.listdir(copies.directory)) - 1  # the owner's lock file


def test_the_least_recently_used_copies_go_first_and_never_one_in_use(
    storage: CountingStorage, copies: LocalCopies
) -> None:
    keys = [storage.put(f"k{n}", padded_pdf(str(n), 100 * KIB)) for n in range(4)]
    for key in keys[:2]:
        render.draw_pdf_page(copies, key, 1, 200)
    render.draw_pdf_page(copies, keys[0], 1, 200)  # k0 is now the more recent
    render.draw_pdf_page(copies, keys[2], 1, 200)
    assert copies.kept() == ["k0", "k2"]
    assert (copies.kept_bytes, files_in(copies)) == (2 * 100 * KIB, 2)
    with ExitStack() as reading:
        held = [reading.enter_context(copies.copy(key, "the PDF")) for key in ("k0", "k2")]
        # Those kept both in use: the next one drawn is deleted once done, though the newest.
        render.draw_pdf_page(copies, keys[3], 1, 200)
        assert copies.kept() == ["k0", "k2"]
        assert files_in(copies) == 2
        # All three in use: past the budget, and none is deleted under its reader.
        held.append(reading.enter_context(copies.copy("k3", "the PDF")))
        assert copies.kept() == ["k0", "k2", "k3"]
        assert copies.kept_bytes > copies.max_bytes
        render.draw_pdf_page(copies, keys[1], 1, 200)
        assert all(Path(path).exists() for path in held)
        assert copies.kept() == ["k0", "k2", "k3"]
    # Done with (k3 first), the oldest unused go until the rest fit.
    assert copies.kept() == ["k0", "k2"]
    assert (copies.kept_bytes, files_in(copies)) == (2 * 100 * KIB, 2)
    assert storage.reads == Counter({"k0": 1, "k1": 2, "k2": 1, "k3": 2})


def test_a_file_larger_than_the_budget_is_drawn_and_not_kept(
    storage: CountingStorage, copies: LocalCopies
) -> None:
    big = storage.put("big", padded_pdf("big", 300 * KIB))
    image, count = render.draw_pdf_page(copies, big, 1, 200)
    assert (image.width, count) == (200, 1)
    assert (copies.kept(), files_in(copies)) == ([], 0)
    image, _ = render.draw_image(copies, storage.put("png", image_bytes((20, 10), "PNG")), 1, 200)
    assert image.size == (20, 10)
    assert copies.kept() == ["png"]


def test_a_failed_download_keeps_nothing_and_the_next_request_tries_again(
    storage: CountingStorage, copies: LocalCopies
) -> None:
    with pytest.raises(FileNotFoundError):
        render.draw_pdf_page(copies, "late", 1, 200)
    assert (copies.kept(), files_in(copies)) == ([], 0)
    storage.put("late", text_pdf(["late"]))
    assert render.draw_pdf_page(copies, "late", 1, 200)[1] == 1
    assert storage.reads["late"] == 2


def test_requests_waiting_for_a_download_share_its_copy(
    storage: CountingStorage, copies: LocalCopies
) -> None:
    storage.put("shared", image_bytes((30, 20), "PNG"))
    storage.hold.clear()
    results: list[tuple[int, int]] = []

    def draw_one() -> None:
        results.append(render.draw_image(copies, "shared", 1, 200)[0].size)

    threads = [threading.Thread(target=draw_one) for _ in range(3)]
    threads[0].start()
    deadline = time.monotonic() + 30
    while not storage.reads:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.3)
    assert not results  # all waiting for the one download
    storage.hold.set()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [(30, 20)] * 3
    assert storage.reads["shared"] == 1
    assert (copies.kept(), files_in(copies)) == (["shared"], 1)


def test_closed_copies_go_once_their_readers_are_done(
    storage: CountingStorage, private_tmp: str
) -> None:
    copies = LocalCopies(storage, max_bytes=250 * KIB)
    storage.put("a", b"a" * KIB)
    storage.put("b", b"b" * KIB)
    with copies.copy("a", "the file"):
        pass
    with copies.copy("b", "the file") as reading:
        copies.close()
        assert Path(reading).read_bytes() == b"b" * KIB  # still there for its reader
        assert files_in(copies) == 1
        with pytest.raises(Unavailable, match="stopping"), copies.copy("a", "the file"):
            pass
    assert copy_dirs(private_tmp) == set()


def test_the_copies_of_a_killed_process_are_removed_by_the_next(
    storage: CountingStorage, private_tmp: str
) -> None:
    """A process killed (out of memory) leaves its directory: in Kubernetes /tmp outlives
    the restarted container. The next cache removes it; a live one's it leaves alone."""
    live = LocalCopies(storage)
    program = (
        "import sys, tempfile\n"
        "from pathlib import Path\n"
        "from bytereview.core.storage import LocalStorage\n"
        "from services.ingest.local_copies import LocalCopies\n"
        f"tempfile.tempdir = {private_tmp!r}\n"
        "storage = LocalStorage(root=Path(sys.argv[1]), public_url='x', secret='s', ttl_seconds=1)\n"
        "copies = LocalCopies(storage)\n"
        "copies.copy('a', 'the file').__enter__()\n"
        "print(copies.directory, flush=True)\n"
        "sys.stdin.read()\n"
    )
    storage.put("a", b"a" * KIB)
    with subprocess.Popen(
        [sys.executable, "-c", program, str(storage.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            left = Path(child.stdout.readline().strip())
            assert left.is_dir()
            LocalCopies(storage).close()  # its owner alive: left alone
            assert left.is_dir()
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    after = LocalCopies(storage)
    assert not left.exists()
    assert live.directory.is_dir()
    after.close()
    live.close()
    assert copy_dirs(private_tmp) == set()


def test_no_room_even_for_an_empty_copy_is_a_full_disk(storage: CountingStorage) -> None:
    """A temporary disk whose inodes are used up takes no new file at all: that is the disk
    full of other files (a wait, core/spool.py), not an unexplained error."""
    storage.put("a", b"a" * KIB)
    with small_tmp(2 * KIB * KIB, inodes=3):  # its root, the cache's directory, its owner file
        copies = LocalCopies(storage)
        try:
            with (
                pytest.raises(SpoolFull, match="temporary disk is full") as caught,
                copies.copy("a", "the file"),
            ):
                pass
            assert not caught.value.never_fits
        finally:
            copies.close()


def test_a_kept_copy_deleted_behind_the_caches_back_is_copied_again(
    storage: CountingStorage, copies: LocalCopies
) -> None:
    """A /tmp cleaner (systemd-tmpfiles on a long-lived dev machine) may remove old files."""
    key = storage.put("old", text_pdf(["old"]))
    render.draw_pdf_page(copies, key, 1, 200)
    for name in os.listdir(copies.directory):
        if not name.startswith("."):
            os.unlink(copies.directory / name)
    assert render.draw_pdf_page(copies, key, 1, 200)[1] == 1
    assert (storage.reads[key], copies.kept(), files_in(copies)) == (2, ["old"], 1)


def test_copies_unused_for_long_are_deleted_whatever_the_room(
    storage: CountingStorage, copies: LocalCopies
) -> None:
    """A deleted file's bytes do not stay on the pod's disk for as long as no other file
    pushes them out: the service expires copies left unused for IDLE_SECONDS."""
    for key in ("old", "held"):
        render.draw_pdf_page(copies, storage.put(key, text_pdf([key])), 1, 200)
    assert copies.expire(now=time.monotonic()) == 0  # used just now
    with copies.copy("held", "the PDF") as held:
        later = time.monotonic() + IDLE_SECONDS + 1
        assert copies.expire(now=later) == 1
        assert copies.kept() == ["held"]  # in use: kept
        assert Path(held).exists()
    assert copies.expire(now=time.monotonic()) == 0  # just done with
    assert copies.expire(now=time.monotonic() + IDLE_SECONDS + 1) == 1
    assert (copies.kept(), files_in(copies)) == ([], 0)
