"""Planning from the streamed central directory: memory flat in the entry count, the
archive-wide checks on compact arrays, and entries whose local header cannot be trusted."""

from __future__ import annotations

import io
import random
import struct
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from bytereview.core import Settings, make_storage
from bytereview.jobs.v1 import resources_pb2 as pb
from services.ingest import spans
from services.ingest.budget import HostileArchive, UnpackLimits
from services.ingest.planning import Planned, open_archive, plan
from services.ingest.server import inspect
from tests import hostile_archives as hostile
from tests.archives import PNG
from tests.services.ingest.test_unpack import unpack

MIB = 1024 * 1024


def test_planning_memory_does_not_grow_with_the_entry_count() -> None:
    """25,000 entries: zipfile's ZipInfo list alone peaked at ~14 MiB on them (and the old
    plan kept a Python object per entry on top). Now a few bytes per entry are kept, plus
    the directory reader's 1 MiB buffers."""
    count = 25_000
    data = hostile.too_many(count)
    limits = UnpackLimits(max_entries=count)
    tracemalloc.start()
    try:
        archive = open_archive(io.BytesIO(data), limits, max_files=count)
        planned = plan(archive, limits)
        assert len(planned) == count
        assert sum(1 for item in planned if not item.problem) == count
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MIB, peak


def test_sorted_runs_and_overlaps_match_a_plain_sort() -> None:
    rng = random.Random(7)
    for code, top in (("Q", 2**64 - 1), ("I", 2**32 - 1)):
        values = [rng.randrange(top) for _ in range(3 * spans.RUN + 5)]
        runs = spans.SortedRuns(code)
        for value in values:
            runs.append(value)
        assert list(runs) == sorted(values)
    for _ in range(200):
        pairs = [(s, s + rng.randrange(1, 40)) for s in rng.sample(range(400), 12)]
        at = spans.first_overlap(sorted(s for s, _ in pairs), sorted(e for _, e in pairs))
        overlapping = any(
            a < d and c < b for i, (a, b) in enumerate(pairs) for (c, d) in pairs[i + 1 :]
        )
        assert (at is not None) == overlapping
        if at is not None:  # two spans hold the offset named
            assert sum(1 for s, e in pairs if s <= at < e) >= 2
    assert spans.repeated([1, 1, 3, 5, 5, 5, 9]) == {1, 5}


class _EveryHash:
    """Every name's hash counts as repeated: as if all names collided."""

    def __contains__(self, value: object) -> bool:
        return True


def test_names_are_compared_where_hashes_repeat() -> None:
    """A repeated hash only means the names are compared: a chance collision between two
    different names fails neither, a real duplicate (case and NFC/NFD folded) fails."""
    data = hostile.build([("a.png", PNG), ("b.png", PNG), ("A.png", PNG), ("c.png", PNG)])
    limits = UnpackLimits()
    archive = open_archive(io.BytesIO(data), limits, max_files=10)
    checked = plan(archive, limits)
    assert [i.problem for i in checked] == ["", "", "another entry has the same name 'A.png'", ""]
    colliding = Planned(archive, limits, files=4, starts=None, repeated=_EveryHash(), salt=b"s")
    assert [bool(i.problem) for i in colliding] == [False, False, True, False]


# -- local headers the directory does not vouch for ------------------------------------------


def _records(data: bytes) -> list[tuple[int, int]]:
    """(central record offset, local header offset) of every entry."""
    out = []
    at = data.find(b"PK\x01\x02")
    while data[at : at + 4] == b"PK\x01\x02":
        name, extra, comment = struct.unpack("<HHH", data[at + 28 : at + 34])
        (local,) = struct.unpack("<I", data[at + 42 : at + 46])
        out.append((at, local))
        at += 46 + name + extra + comment
    return out


def _stored(*names: str) -> bytes:
    return hostile.build([(hostile.entry(n, method=zipfile.ZIP_STORED), PNG) for n in names])


def _stretched() -> bytes:
    """The first entry's local header says its extra field is 40 bytes long: its data would
    then run over the next entry's local header. The CRC in both headers matches those
    shifted bytes, so nothing but the bound catches it (a quoted overlap through the local
    header, which the directory alone cannot show)."""
    out = bytearray(_stored("a.png", "b.png"))
    [(central, local), _] = _records(bytes(out))
    out[local + 28 : local + 30] = struct.pack("<H", 40)
    start = local + 30 + len("a.png") + 40
    crc = struct.pack("<I", zlib.crc32(out[start : start + len(PNG)]))
    out[local + 14 : local + 18] = crc
    out[central + 16 : central + 20] = crc
    return bytes(out)


def _local(patch_at: int, value: bytes) -> bytes:
    """The first entry's local header with `value` written at `patch_at`."""
    out = bytearray(_stored("a.png", "b.png"))
    [(_, local), _] = _records(bytes(out))
    out[local + patch_at : local + patch_at + len(value)] = value
    return bytes(out)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_stretched(), "past the start of the next entry"),
        (_local(30, b"x"), "differ"),  # its name is not the directory's
        (_local(0, b"XK"), "Bad magic number"),
        (_local(26, struct.pack("<H", 60_000)), "differ"),  # a name running off the end
    ],
    ids=["stretched-over-the-next", "other-name", "no-signature", "truncated-name"],
)
async def test_an_entry_whose_local_header_disagrees_fails_alone(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    outcome, entries = await unpack(storage, data)
    assert outcome.error == ""
    assert [e.path for e in entries] == ["a.png", "b.png"]
    assert entries[0].status == pb.SourceFile.FAILED
    assert "damaged" in entries[0].error
    assert reason in entries[0].error
    assert entries[1].status == pb.SourceFile.READY


def _point(data: bytes, index: int, offset: int) -> bytes:
    """Entry `index`'s directory record points at `offset`."""
    out = bytearray(data)
    central, _ = _records(data)[index]
    out[central + 42 : central + 46] = struct.pack("<I", offset)
    return bytes(out)


def _swapped(data: bytes) -> bytes:
    """The first two directory records swapped: records out of file order."""
    [(first, _), (second, _), *_] = _records(data)
    name, extra, comment = struct.unpack("<HHH", data[second + 28 : second + 34])
    after = second + 46 + name + extra + comment
    return data[:first] + data[second:after] + data[first:second] + data[after:]


async def test_records_out_of_file_order_and_offsets_past_the_directory(tmp_path: Path) -> None:
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    data = _stored("a.png", "b.png", "c.png")
    # Out of file order, no two sharing bytes: unpacked like any archive.
    outcome, entries = await unpack(storage, _swapped(data))
    assert outcome.error == ""
    assert [(e.path, e.status) for e in entries] == [
        ("b.png", pb.SourceFile.READY),
        ("a.png", pb.SourceFile.READY),
        ("c.png", pb.SourceFile.READY),
    ]
    # Out of file order, an entry's local header stretching it over the next entry.
    outcome, entries = await unpack(storage, _swapped(_stretched()))
    assert outcome.error == ""
    assert [(e.path, e.status) for e in entries] == [
        ("b.png", pb.SourceFile.READY),
        ("a.png", pb.SourceFile.FAILED),
    ]
    assert "past the start of the next entry" in entries[1].error
    # Out of file order, the last record pointing at the first entry's bytes.
    outcome, entries = await unpack(storage, _point(data, 2, 0))
    assert "entries 'c.png' and 'a.png' overlap" in outcome.error
    assert entries == []
    # A record pointing past the start of the directory, into it.
    end = data.rfind(b"PK\x05\x06")
    outcome, entries = await unpack(storage, _point(data, 1, end))
    assert "entry 'b.png' claims more bytes than the archive holds" in outcome.error
    assert entries == []


async def test_a_name_flagged_utf8_that_is_not_is_damage(tmp_path: Path) -> None:
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    data = hostile.patch(hostile.raw_names([(b"\xff\xfe.png", PNG)]), 0, flags=0x800)
    outcome, entries = await unpack(storage, data)
    assert "damaged or truncated" in outcome.error
    assert "not valid UTF-8" in outcome.error
    assert entries == []


def test_names_of_long_runs_of_marks_are_refused_before_they_are_normalised(
    tmp_path: Path,
) -> None:
    """NFC orders a run of combining marks with an insertion sort: 64 KiB names of marks
    in reverse order took 1.5 CPU-s each to normalise, on every walk of the directory
    (planning and unpacking: 25 CPU-s of the worker for a 2.5 KB upload of eight zipped).
    A run past Unicode's stream-safe bound (30) refuses the archive unnormalised, and the
    listing shows such names as they are; U+0F73 is two marks once decomposed."""
    names = [f"{i}" + hostile.reordered_marks(32_700) for i in range(4)]
    names.append("b" + "\u0f73" * 21_000 + ".png")
    data = hostile.utf8_names([*names, "ok.png"])
    limits = UnpackLimits()
    start = time.process_time()
    archive = open_archive(io.BytesIO(data), limits, max_files=limits.max_entries)
    with pytest.raises(HostileArchive, match="more than 30 combining marks in a row"):
        plan(archive, limits)
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    with storage.open_write("a.zip") as handle:
        handle.write(data)
    listing = inspect(storage, "a.zip", limits)
    assert "combining marks" in listing.problem
    assert [e.path for e in listing.entries][-1] == "ok.png"
    assert time.process_time() - start < 2, time.process_time() - start
