"""The archive unpacker on real and hostile archives, into both storage backends."""

from __future__ import annotations

import random
import unicodedata
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from bytereview.core import LocalStorage, Settings, Storage, make_storage
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.ingest.unpack import (
    CHUNK,
    ArchiveUnpacker,
    HostileArchive,
    Outcome,
    Registered,
    StorageFailure,
    UnpackLimits,
    safe_entry_path,
)
from tests import archives
from tests import hostile_archives as hostile
from tests.hostile_documents import webp_padded
from tests.servers import FakeGcs

PREFIX = "jobs/" + "a" * 32 + "/entries/" + "b" * 32 + "/"
ROOT = "jobs/x/files/root"


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


class RecordingReporter:
    """Stands in for the jobs service's registration in these unpacker-level tests (the
    real one is driven in test_worker.py and test_hostile.py): names every entry."""

    def __init__(self) -> None:
        self.by_archive: dict[str, list[worker_pb.ArchiveEntry]] = {}
        self.verdicts: dict[str, Outcome] = {}

    async def entries(self, archive: str, batch: Sequence[worker_pb.ArchiveEntry]) -> Registered:
        self.by_archive.setdefault(archive, []).extend(batch)
        # Stable names, as the jobs service's are: a redelivery names every entry the same.
        leaf = archive.rsplit("/", 1)[-1]
        return Registered(files=[f"jobs/x/files/{leaf}-{e.index}" for e in batch])

    async def unpacked(self, file: str, entry: worker_pb.ArchiveEntry, outcome: Outcome) -> None:
        self.verdicts[file] = outcome

    @property
    def all(self) -> list[worker_pb.ArchiveEntry]:
        return [e for batch in self.by_archive.values() for e in batch]


async def unpack(
    storage: Storage, data: bytes, limits: UnpackLimits | None = None
) -> tuple[Outcome, list[worker_pb.ArchiveEntry]]:
    outcome, reporter = await unpack_all(storage, data, limits)
    return outcome, reporter.by_archive.get(ROOT, [])


async def unpack_all(
    storage: Storage, data: bytes, limits: UnpackLimits | None = None
) -> tuple[Outcome, RecordingReporter]:
    with storage.open_write("jobs/x/uploads/archive") as handle:
        handle.write(data)
    reporter = RecordingReporter()
    unpacker = ArchiveUnpacker(
        storage=storage,
        limits=limits or UnpackLimits(),
        archive_key="jobs/x/uploads/archive",
        target_prefix=PREFIX,
        archive_name=ROOT,
        prefix_for=lambda file: f"{PREFIX}{file.rsplit('/', 1)[-1]}/",
    )
    return await unpacker.run(reporter), reporter


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
    outcome, reporter = await unpack_all(storage, data)
    entries = reporter.by_archive[ROOT]
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
    # Nested: unpacked right here, with the same budget, then given its verdict.
    assert by_path["inner.zip"].status == pb.SourceFile.ANALYZING
    assert by_path["inner.zip"].media_type == "application/zip"
    assert by_path["notes.txt"].status == pb.SourceFile.UNSUPPORTED
    assert by_path["empty.pdf"].status == pb.SourceFile.FAILED
    assert by_path["scan.png"].status == pb.SourceFile.READY
    for entry in entries:
        assert entry.storage_key.startswith(PREFIX)
    with storage.open_read(by_path["2026/April/a.pdf"].storage_key) as handle:
        assert handle.read() == archives.invoice("2")
    inner_name = f"jobs/x/files/root-{by_path['inner.zip'].index}"
    assert [e.path for e in reporter.by_archive[inner_name]] == ["deep/x.pdf"]
    assert reporter.verdicts[inner_name].error == ""
    # A second run (a redelivered message) writes the same keys: nothing new appears.
    _, again = await unpack_all(storage, data)
    assert [e.storage_key for e in again.all] == [e.storage_key for e in reporter.all]
    assert len(list(storage.list_keys(PREFIX))) == len(reporter.all)


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
        (archives.zip_bytes({"a\\..\\..\\evil.pdf": b"x"}), None, "outside the archive"),
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


@pytest.mark.parametrize(
    "name", ["a/../../b", "/x", "C:x", "a\\..\\..\\b", "\\\\unc\\x", "a\x01b", "a\x00b", "./"]
)
def test_safe_entry_path_refuses(name: str) -> None:
    with pytest.raises(HostileArchive):
        safe_entry_path(name)


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("a\\b.pdf", "a/b.pdf"),  # a backslash is a separator, never part of a traversal
        ("./a//b.pdf", "a/b.pdf"),
        (unicodedata.normalize("NFD", "März.pdf"), "März.pdf"),  # NFC
    ],
)
def test_safe_entry_path_normalises(name: str, path: str) -> None:
    assert safe_entry_path(name) == path


def _random_entry_archive() -> bytes:
    """A 3 MiB incompressible entry (so bytes are written before the damage is met) and a
    good one."""
    noise = random.Random(7).randbytes(3 * 1024 * 1024)
    return hostile.build([("bad.png", noise), ("ok.png", archives.PNG)])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        # Damage half-way through: the first MiBs are already in storage when it is found.
        (hostile.patch(_random_entry_archive(), 0, data_at=(2 * 1024 * 1024, b"\xff" * 64)), ""),
        (hostile.patch(_random_entry_archive(), 0, method=98), "method 98"),
        (hostile.patch(_random_entry_archive(), 0, crc=1), "CRC"),
    ],
    ids=["corrupt-deflate", "unsupported-method", "bad-crc"],
)
async def test_a_damaged_entry_fails_alone_and_leaves_no_partial_object(
    storage: Storage, data: bytes, reason: str
) -> None:
    outcome, entries = await unpack(storage, data)
    assert outcome.error == ""
    bad, ok = entries
    assert bad.status == pb.SourceFile.FAILED
    assert reason in bad.error
    assert "damaged" in bad.error or "method" in bad.error
    assert ok.status == pb.SourceFile.READY
    assert list(storage.list_keys(PREFIX)) == [ok.storage_key]


async def test_many_small_bombs_are_stopped_by_the_aggregate_ratio(tmp_path: Path) -> None:
    # 64 entries of 1 MiB of zeros, each well within a per-entry ratio allowance.
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    data = hostile.many_small_bombs(64)
    limits = UnpackLimits()
    outcome, entries = await unpack(storage, data, limits)
    assert "zip bomb" in outcome.error
    written = sum(storage.size(key) or 0 for key in storage.list_keys(PREFIX))
    assert written <= limits.max_ratio * len(data) + limits.ratio_allowance_bytes + CHUNK
    assert len(entries) < 16
    # Whatever was written before the stop is registered; nothing else is left.
    assert set(storage.list_keys(PREFIX)) == {e.storage_key for e in entries}


async def test_nested_archives_draw_on_the_upload_budget(tmp_path: Path) -> None:
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    limits = UnpackLimits(max_entries=100)
    outcome, reporter = await unpack_all(storage, hostile.nested_over_budget(80), limits)
    assert outcome.error == ""
    verdicts = sorted(v.error for v in reporter.verdicts.values())
    assert verdicts[0] == ""
    assert "only 18 more fit" in verdicts[1]
    assert len(reporter.all) <= limits.max_entries
    # Bytes: a nested bomb stops the whole upload, every level with a verdict.
    outcome, reporter = await unpack_all(storage, hostile.nested_bomb())
    assert "zip bomb" in outcome.error
    assert outcome.stops_upload
    assert reporter.verdicts
    assert all("zip bomb" in v.error for v in reporter.verdicts.values())


class FailingStorage(LocalStorage):
    """Local storage whose reads or writes fail part-way, as a network store does when it
    goes away."""

    def __init__(self, root: Path, *, fail: str) -> None:
        super().__init__(root=root, public_url="http://x", secret="s", ttl_seconds=60)
        self.fail = fail

    def open_read(self, key: str) -> BinaryIO:
        handle = super().open_read(key)
        if self.fail != "read" or not key.endswith("/archive"):
            return handle
        reads = 0
        real = handle.read

        def read(size: int = -1) -> bytes:
            nonlocal reads
            reads += 1
            if reads > 3:
                raise ConnectionResetError("storage went away")
            return real(size)

        handle.read = read  # type: ignore[method-assign]
        return handle

    def open_write(self, key: str, content_type: str = "application/octet-stream") -> BinaryIO:
        if self.fail == "write" and "/entries/" in key:
            raise OSError(28, "No space left on device")
        return super().open_write(key, content_type)


@pytest.mark.parametrize("fail", ["read", "write"])
async def test_a_storage_failure_is_retried_not_taken_for_damage(tmp_path: Path, fail: str) -> None:
    storage = FailingStorage(tmp_path, fail="")
    with storage.open_write("jobs/x/uploads/archive") as handle:
        handle.write(archives.zip_bytes({f"{i}.png": archives.PNG for i in range(50)}))
    storage.fail = fail
    unpacker = ArchiveUnpacker(
        storage=storage,
        limits=UnpackLimits(),
        archive_key="jobs/x/uploads/archive",
        target_prefix=PREFIX,
        archive_name=ROOT,
    )
    with pytest.raises(StorageFailure):
        await unpacker.run(RecordingReporter())


async def test_entries_the_jobs_service_does_not_register_are_deleted(tmp_path: Path) -> None:
    class FullJob(RecordingReporter):
        async def entries(
            self, archive: str, batch: Sequence[worker_pb.ArchiveEntry]
        ) -> Registered:
            named = await super().entries(archive, batch)
            # The first three fit; the job's file cap refuses the rest.
            return Registered(
                files=[n if e.index < 3 else "" for n, e in zip(named.files, batch, strict=True)],
                refused="the job holds its limit of 10000 files",
            )

    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    with storage.open_write("jobs/x/uploads/archive") as handle:
        handle.write(archives.zip_bytes({f"{i}.png": archives.PNG for i in range(10)}))
    unpacker = ArchiveUnpacker(
        storage=storage,
        limits=UnpackLimits(),
        archive_key="jobs/x/uploads/archive",
        target_prefix=PREFIX,
        archive_name=ROOT,
    )
    outcome = await unpacker.run(FullJob())
    assert "limit of 10000 files" in outcome.error
    assert outcome.stops_upload
    assert sorted(storage.list_keys(PREFIX)) == [f"{PREFIX}{i}" for i in range(3)]


async def test_a_webp_entry_over_its_byte_bound_fails_alone(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoders read a WebP whole into memory: an entry over MAX_WEBP_BYTES fails as an
    upload does (the bound lowered here, so a small archive shows it; stored, not deflated,
    as padding inflating past the ratio budget would refuse the archive first)."""
    from bytereview.core import webp_bytes

    monkeypatch.setattr(webp_bytes, "MAX_WEBP_BYTES", 100_000)
    data = hostile.build(
        [
            (hostile.entry("big.webp", method=zipfile.ZIP_STORED), webp_padded(200_000)),
            (hostile.entry("small.webp", method=zipfile.ZIP_STORED), webp_padded(1000)),
        ]
    )
    outcome, entries = await unpack(storage, data)
    assert outcome.error == ""
    by_path = {e.path: e for e in entries}
    assert by_path["big.webp"].status == pb.SourceFile.FAILED
    assert "WebP files of more than 100000 bytes are not read" in by_path["big.webp"].error
    assert by_path["small.webp"].status == pb.SourceFile.READY


async def test_an_office_document_entry_is_not_unpacked_whatever_its_part_order(
    storage: Storage,
) -> None:
    """Known by its directory before it is registered: one UNSUPPORTED entry, as one that
    says so in its first header is, even where a nested archive would be too deep; nothing
    of it is unpacked or stored but its own bytes."""
    data = hostile.build(
        [
            ("first.docx", hostile.office("word/document.xml")),
            ("last.docx", hostile.office_exported("word/document.xml")),
            ("inner.zip", hostile.build([("a.png", archives.PNG)])),
        ]
    )
    outcome, reporter = await unpack_all(storage, data, UnpackLimits(max_depth=1))
    assert outcome.error == ""
    by_path = {e.path: e for e in reporter.by_archive[ROOT]}
    first, last = by_path["first.docx"], by_path["last.docx"]
    assert last.status == pb.SourceFile.UNSUPPORTED
    assert (last.media_type, last.error) == (first.media_type, first.error)
    assert "Office document" in last.error
    assert "nested deeper" in by_path["inner.zip"].error  # the depth limit still holds
    assert list(reporter.by_archive) == [ROOT]
    assert not reporter.verdicts
    # Each entry's own bytes, nothing from inside them.
    assert sorted(storage.list_keys(PREFIX)) == sorted(e.storage_key for e in by_path.values())
