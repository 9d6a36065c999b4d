"""Directory records read in unpacking one upload, every nested archive counted: folders cost
no file, so the file budget never bounded them, and each archive's own limit bounds only it."""

from __future__ import annotations

import struct
from pathlib import Path

from bytereview.core import Settings, Storage, make_storage
from bytereview.jobs.v1 import resources_pb2 as pb
from services.ingest.unpack import ArchiveUnpacker, UnpackLimits, UploadBudget
from tests.archives import PNG
from tests.hostile_archives import build, nested_folder_records
from tests.services.ingest.test_unpack import PREFIX, ROOT, RecordingReporter

LIMITS = UnpackLimits(max_entries=100)  # 200 records an archive, 400 read an upload


def _storage(tmp_path: Path) -> Storage:
    return make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))


async def _unpack(storage: Storage, data: bytes) -> tuple[RecordingReporter, UploadBudget]:
    with storage.open_write("jobs/x/uploads/archive") as handle:
        handle.write(data)
    budget = UploadBudget(LIMITS)
    reporter = RecordingReporter()
    outcome = await ArchiveUnpacker(
        storage=storage,
        limits=LIMITS,
        archive_key="jobs/x/uploads/archive",
        target_prefix=PREFIX,
        archive_name=ROOT,
        budget=budget,
        prefix_for=lambda file: f"{PREFIX}{file.rsplit('/', 1)[-1]}/",
    ).run(reporter)
    assert outcome.error == ""
    return reporter, budget


async def test_folder_records_of_nested_archives_are_read_within_the_uploads_budget(
    tmp_path: Path,
) -> None:
    """Twenty nested archives of 150 folders and a file each: within every per-archive
    limit, 3,000 records in all. Two are read; the rest are refused, none for more than a
    record."""
    storage = _storage(tmp_path)
    reporter, budget = await _unpack(storage, nested_folder_records(20, 150))
    verdicts = [reporter.verdicts[f"jobs/x/files/root-{i}"] for i in range(20)]
    assert [v.error for v in verdicts[:2]] == ["", ""]
    for verdict in verdicts[2:]:
        assert "too many entries and folders" in verdict.error
        assert not verdict.stops_upload  # other files of the upload go on
    png = [e for e in reporter.all if e.path == "a.png"]
    assert [e.status for e in png] == [pb.SourceFile.READY] * 2
    # A walk reads one record past what is left, to know it is over; then none are read.
    assert budget.records_read <= LIMITS.max_records_read + 1


async def test_a_directory_damaged_after_many_records_is_charged_for_what_was_read(
    tmp_path: Path,
) -> None:
    """Counting the entries reads records until the damage: those reads are charged, or
    thousands of such archives would be read for free."""
    inner = build([*((f"d{i}/", b"") for i in range(150)), ("a.png", PNG)])
    end = inner.rfind(b"PK\x05\x06")
    (size,) = struct.unpack("<I", inner[end + 12 : end + 16])
    # 46 bytes more of directory than its 151 records, and they are no record.
    damaged = (
        inner[:end]
        + b"\0" * 46
        + inner[end : end + 12]
        + struct.pack("<I", size + 46)
        + inner[end + 16 :]
    )
    reporter, budget = await _unpack(_storage(tmp_path), build([("x.zip", damaged)]))
    assert budget.records_read >= 1 + 151
    assert "damaged" in reporter.verdicts["jobs/x/files/root-0"].error


async def test_documents_nested_in_an_upload_are_read_within_its_budget(tmp_path: Path) -> None:
    """An Office document is known by its directory and never unpacked: its directory is
    read once, and that read is charged too (its parts may be listed last, after thousands
    of others)."""
    padded = build(
        [
            *((f"pad/{i}.xml", b"") for i in range(150)),
            ("[Content_Types].xml", b"<x/>"),
            ("word/document.xml", b"<w/>"),
        ]
    )
    reporter, budget = await _unpack(
        _storage(tmp_path), build([(f"{i}.docx", padded) for i in range(40)])
    )
    # A walk reads one record past what is left, to know it is over; then none are read.
    entries = reporter.by_archive[ROOT]
    # Two are read in full while the budget lasts; the others are refused as archives are.
    assert [e.status for e in entries].count(pb.SourceFile.UNSUPPORTED) == 2
    refused = [reporter.verdicts[f"jobs/x/files/root-{i}"].error for i in range(2, 40)]
    assert all("too many entries and folders" in error for error in refused)
    assert budget.records_read <= LIMITS.max_records_read + 1


async def test_re_zipped_opendocuments_nested_in_an_upload_are_read_within_its_budget(
    tmp_path: Path,
) -> None:
    """An OpenDocument known by its directory (its `mimetype` last) is charged as an Office
    document is, its `mimetype` read once each."""
    padded = build(
        [
            *((f"pad/{i}.xml", b"") for i in range(150)),
            ("META-INF/manifest.xml", b"<m/>"),
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
        ]
    )
    reporter, budget = await _unpack(
        _storage(tmp_path), build([(f"{i}.odt", padded) for i in range(40)])
    )
    entries = reporter.by_archive[ROOT]
    assert [e.status for e in entries].count(pb.SourceFile.UNSUPPORTED) == 2
    assert all("OpenDocument" in e.error for e in entries[:2])
    refused = [reporter.verdicts[f"jobs/x/files/root-{i}"].error for i in range(2, 40)]
    assert all("too many entries and folders" in error for error in refused)
    assert budget.records_read <= LIMITS.max_records_read + 1


async def test_office_documents_written_by_office_cost_a_few_records_each(
    tmp_path: Path,
) -> None:
    """`[Content_Types].xml` first no longer says Office by itself (XPS, Visio and 3MF
    write it first too), so such a document's directory is read as well: the walk stops at
    its main folder, and only the records read up to there are charged."""
    office = build(
        [
            ("[Content_Types].xml", b"<x/>"),
            ("word/document.xml", b"<w/>"),
            *((f"word/media/{i}.png", PNG) for i in range(150)),
        ]
    )
    reporter, budget = await _unpack(
        _storage(tmp_path), build([(f"{i}.docx", office) for i in range(40)])
    )
    entries = reporter.by_archive[ROOT]
    assert [e.status for e in entries] == [pb.SourceFile.UNSUPPORTED] * 40
    assert all("Office document" in e.error for e in entries)
    # The upload's own 40 records, then two of each document's.
    assert budget.records_read == 40 + 40 * 2
