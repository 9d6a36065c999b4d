"""The archive unpacker on real and hostile archives, into both storage backends."""

from __future__ import annotations

import zipfile
from pathlib import Path

import httpx
import pytest

from bytereview.core import LocalStorage, Settings, Storage, make_storage
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.ingest.unpack import (
    ArchiveUnpacker,
    HostileArchive,
    Outcome,
    UnpackLimits,
    safe_entry_path,
)
from tests import archives
from tests.servers import FakeGcs

PREFIX = "jobs/" + "a" * 32 + "/entries/" + "b" * 32 + "/"


@pytest.fixture(params=["local", "gcs"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    gcs: FakeGcs = request.getfixturevalue("fake_gcs")
    bucket = f"u-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    httpx.post(f"{gcs.url}/storage/v1/b", json={"name": bucket}).raise_for_status()
    return make_storage(
        Settings(env="dev", storage_backend="gcs", gcs_bucket=bucket, gcs_endpoint=gcs.url)
    )


async def unpack(
    storage: Storage, data: bytes, limits: UnpackLimits | None = None
) -> tuple[Outcome, list[worker_pb.ArchiveEntry]]:
    with storage.open_write("jobs/x/uploads/archive") as handle:
        handle.write(data)
    reported: list[worker_pb.ArchiveEntry] = []

    async def report(batch: list[worker_pb.ArchiveEntry]) -> None:
        reported.extend(batch)

    unpacker = ArchiveUnpacker(
        storage=storage,
        limits=limits or UnpackLimits(),
        archive_key="jobs/x/uploads/archive",
        target_prefix=PREFIX,
    )
    return await unpacker.run(report), reported


async def test_real_archive_with_folders_unicode_junk_and_nesting(storage: Storage) -> None:
    inner = archives.zip_bytes({"deep/x.pdf": archives.invoice("X")})
    data = archives.zip_bytes(
        {
            "2026/März/rechnung-ü.pdf": archives.invoice("1"),
            "2026/April/": b"",
            "2026/April/a.pdf": archives.invoice("2"),
            "__MACOSX/2026/._a.pdf": b"junk",
            "2026/.DS_Store": b"junk",
            "Thumbs.db": b"junk",
            "inner.zip": inner,
            "notes.txt": b"hello",
            "empty.pdf": b"",
            "scan.png": b"\x89PNG\r\n\x1a\n"
            + b"\0\0\0\rIHDR"
            + (640).to_bytes(4, "big")
            + (480).to_bytes(4, "big")
            + b"\0" * 20,
        }
    )
    outcome, entries = await unpack(storage, data)
    assert outcome.error == ""
    by_path = {e.path: e for e in entries}
    assert set(by_path) == {
        "2026/März/rechnung-ü.pdf",
        "2026/April/a.pdf",
        "inner.zip",
        "notes.txt",
        "empty.pdf",
        "scan.png",
    }
    assert (
        by_path["2026/April/a.pdf"].status == pb.SourceFile.UPLOADED
    )  # PDFs get their own analysis
    assert by_path["inner.zip"].status == pb.SourceFile.UPLOADED  # nested: queued for ingest
    assert by_path["inner.zip"].media_type == "application/zip"
    assert by_path["notes.txt"].status == pb.SourceFile.UNSUPPORTED
    assert by_path["empty.pdf"].status == pb.SourceFile.FAILED
    assert by_path["scan.png"].status == pb.SourceFile.READY
    for entry in entries:
        assert entry.storage_key.startswith(PREFIX)
    with storage.open_read(by_path["2026/April/a.pdf"].storage_key) as handle:
        assert handle.read() == archives.invoice("2")
    # A second run (a redelivered message) writes the same keys: nothing new appears.
    _, again = await unpack(storage, data)
    assert [e.storage_key for e in again] == [e.storage_key for e in entries]
    assert len(list(storage.list_keys(PREFIX))) == len(entries)


async def test_thousands_of_entries(storage: Storage) -> None:
    # fake-gcs-server takes ~0.1 s per object (resumable upload sessions); keep its share small.
    count = 2000 if isinstance(storage, LocalStorage) else 30
    data = archives.zip_bytes(
        {f"batch/{i:04d}.pdf": archives.invoice(str(i)) for i in range(count)}
    )
    outcome, entries = await unpack(storage, data)
    assert outcome.entries == count
    assert len({e.index for e in entries}) == count


@pytest.mark.parametrize(
    ("data", "limits", "reason"),
    [
        (archives.zip_bytes({"../evil.pdf": b"x"}), None, "outside the archive"),
        (archives.zip_bytes({"/etc/evil.pdf": b"x"}), None, "absolute path"),
        (archives.zip_bytes({"C:/evil.pdf": b"x"}), None, "absolute path"),
        (archives.zip_bytes({"a\\..\\evil.pdf": b"x"}), None, "backslashes"),
        (archives.symlink_zip(), None, "symbolic link"),
        (archives.overlapping_zip(), None, "overlap"),
        (archives.bomb_zip(64 * 1024 * 1024), UnpackLimits(max_ratio=100), "zip bomb"),
        (
            archives.bomb_zip(8 * 1024 * 1024),
            UnpackLimits(max_ratio=10_000, max_total_bytes=4 * 1024 * 1024),
            "inflates beyond",
        ),
        (
            archives.zip_bytes({f"{i}.pdf": b"x" for i in range(20)}),
            UnpackLimits(max_entries=10),
            "limit is 10",
        ),
        (archives.zip_bytes({"a.pdf": archives.invoice("1")})[:-30], None, "damaged or truncated"),
        (b"PK\x03\x04 this is not a zip", None, "damaged or truncated"),
    ],
)
async def test_hostile_archives_are_refused(
    tmp_path: Path, data: bytes, limits: UnpackLimits | None, reason: str
) -> None:
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    outcome, _ = await unpack(storage, data, limits)
    assert reason in outcome.error
    # Nothing was written outside the target prefix, and no partial files remain.
    for key in storage.list_keys(""):
        assert key.startswith((PREFIX, "jobs/x/uploads/"))
    assert not list(tmp_path.rglob("*.partial"))


async def test_unusable_entries_become_failed_files(tmp_path: Path) -> None:
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    data = archives.encrypted_zip()
    outcome, entries = await unpack(storage, data)
    assert outcome.error == ""
    assert entries[0].status == pb.SourceFile.FAILED
    assert "encrypted" in entries[0].error
    with pytest.warns(UserWarning, match="Duplicate name"):
        dupes = archives.with_entry_info(
            [
                (zipfile.ZipInfo("a.pdf"), archives.invoice("1")),
                (zipfile.ZipInfo("a.pdf"), archives.invoice("2")),
            ]
        )
    outcome, entries = await unpack(storage, dupes)
    assert [e.status for e in entries] == [pb.SourceFile.UPLOADED, pb.SourceFile.FAILED]
    assert "same name" in entries[1].error


@pytest.mark.parametrize("name", ["a/../../b", "/x", "C:x", "a\\b", "a\x01b"])
def test_safe_entry_path(name: str) -> None:
    with pytest.raises(HostileArchive):
        safe_entry_path(name)
