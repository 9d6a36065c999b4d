"""What to do with each entry of a ZIP archive, decided from its central directory streamed
twice (after it was counted: services/ingest/directory.py), never held whole.

The first walk checks the archive as a whole: entry counts, no two entries sharing bytes
(overlap zip bombs), no entry past the central directory, names that stay inside the
archive. It keeps a few bytes per entry (services/ingest/spans.py). The second walk,
lazily and in the unpacker's windows, decides per entry: unpack it, or fail it alone
(symbolic link, encrypted, path too long, same name as an earlier entry, too large).
No ZipInfo list ever exists: a 100,000-entry archive plans in as much memory as a small one.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import stat
import zipfile
from array import array
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from services.ingest import directory, entry_data, spans
from services.ingest.budget import HostileArchive, UnpackLimits, UploadBudget
from services.ingest.directory import Record
from services.ingest.entry_names import (
    MAX_PATH,
    Nameless,
    UnsafeName,
    folders_of,
    record_name,
    safe_entry_path,
    same_name_key,
    shortened,
    shown,
)

JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
JUNK_DIRS = ("__MACOSX/",)


# Unix file types an entry may be marked as that are not files: `unzip` would make a device
# or a pipe of them. Their bytes are meaningless; they fail alone, as links do.
_SPECIAL = {
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFIFO: "named pipe (FIFO)",
    stat.S_IFSOCK: "socket",
}


class DamagedArchive(Exception):
    """The archive cannot be read as a ZIP at all."""


class SplitArchive(DamagedArchive):
    """The upload is one part of a split archive; the message says what to do."""


SPLIT = (
    "the file is one part of a split (multi-part) ZIP archive, whose entries are in its "
    "other parts (.z01, .z02, ...); join the parts into one ZIP archive (zip -s 0 "
    "archive.zip --out whole.zip) and upload that"
)


def is_junk(path: str) -> bool:
    return (
        path.startswith(JUNK_DIRS)
        or path.rsplit("/", 1)[-1] in JUNK_NAMES
        or (path.rsplit("/", 1)[-1].startswith("._"))
    )


@dataclass(frozen=True, slots=True)
class ZipArchive:
    """A seekable archive whose directory end is known and whose record count is in limits."""

    handle: BinaryIO
    end: directory.DirectoryEnd

    def records(self) -> Iterator[Record]:
        """The directory's records, streamed; DamagedArchive if the directory is damaged."""
        try:
            yield from directory.walk(self.handle, self.end)
        except directory.DirectoryError as exc:
            raise DamagedArchive(str(exc)) from exc

    def start(self, record: Record) -> int:
        """Where the record's local header is in the handle (data before the archive too)."""
        return spans.clamp(record.header_offset + self.end.prefix)


def open_archive(
    handle: BinaryIO,
    limits: UnpackLimits,
    *,
    max_files: int,
    budget: UploadBudget | None = None,
) -> ZipArchive:
    """The archive, once its directory is known to hold at most `max_files` files (and
    `limits.max_records` records): HostileArchive beyond that, counted without keeping any
    record. DamagedArchive if it cannot be read as a ZIP. With an upload's `budget`, the
    directory read is charged to it, whatever the verdict, and no more is read than the
    budget has left."""
    try:
        end = directory.read_end(handle)
    except directory.DirectoryError as exc:
        raise DamagedArchive(str(exc)) from exc
    if end.split:
        # Its records point into the other parts: read here, entries overlapped or were
        # damaged, and the verdict called it a zip bomb.
        raise SplitArchive(SPLIT)
    if end.entries > limits.max_records:
        raise _over(end.entries, max_files, limits, exact=True)
    if end.size > limits.max_directory_bytes:
        raise HostileArchive(
            f"the archive's central directory is {end.size} bytes; the limit is "
            f"{limits.max_directory_bytes}"
        )
    max_records = limits.max_records
    read: Callable[[int], None] | None = None
    if budget is not None:
        # Nothing left: refused unread (each walk reads one record past what is left).
        if end.size > budget.directory_bytes_left or (end.size and not budget.records_left):
            raise _over_upload(limits)
        max_records = min(max_records, budget.records_left)
        charged = budget

        def read(records: int) -> None:
            charged.read_directory(records, end.size)

    try:
        counted = directory.census(
            handle, end, max_files=max_files, max_records=max_records, read=read
        )
    except directory.DirectoryError as exc:
        raise DamagedArchive(str(exc)) from exc
    if not counted.complete:
        if counted.files <= max_files and max_records < limits.max_records:
            raise _over_upload(limits)
        over = counted.files if counted.files > max_files else counted.records
        raise _over(over, max_files, limits, exact=False)
    return ZipArchive(handle, end)


def _over_upload(limits: UnpackLimits) -> HostileArchive:
    return HostileArchive(
        "the upload's archives list too many entries and folders in all, every nested "
        f"archive counted (at most {limits.max_records_read} are read); this one is not read"
    )


def _over(count: int, max_files: int, limits: UnpackLimits, *, exact: bool) -> HostileArchive:
    if max_files < limits.max_entries:
        return HostileArchive(
            f"the archive holds more than {max_files} files; only {max_files} more fit in "
            f"the upload's limit of {limits.max_entries}"
        )
    holds = f"{count} entries" if exact else f"more than {count - 1} entries"
    return HostileArchive(f"the archive holds {holds}; the limit is {limits.max_entries} files")


def name_of(record: Record) -> str:
    """The record's decoded name; DamagedArchive if its UTF-8 flag is a lie (as zipfile)."""
    try:
        return record_name(record.raw_name, record.flags)
    except UnicodeDecodeError as exc:
        raise DamagedArchive(f"an entry's name is not valid UTF-8 ({exc})") from exc


def _entry_path(record: Record, name: str) -> str | None:
    """The entry's safe path, None for a folder, '' for a file without a name (it fails
    alone: NAMELESS); UnsafeName for a hostile name."""
    if record.is_dir or name.endswith("\\"):
        if name.replace("\\", "/") == "./":
            return None  # the archive's own folder: bsdtar (macOS, Windows' tar.exe) writes it
        with contextlib.suppress(Nameless):  # a folder named " ": it names no file
            safe_entry_path(name)
        return None
    try:
        return safe_entry_path(name)
    except Nameless:
        # An empty name (streaming zippers write one for their input), or only spaces:
        # no path to give it, but nothing hostile; it was the whole archive's refusal.
        return ""


NAMELESS = "the entry has no file name"


@dataclass(slots=True)
class Plan:
    index: int
    record: Record
    path: str
    problem: str = ""
    # Where the next entry's bytes (or the central directory) start: its data ends by then.
    bound: int = 0


class Planned:
    """An archive checked as a whole (by `plan`): len() is how many entries it will
    unpack or fail; iterating walks the directory again and decides per entry."""

    def __init__(
        self,
        archive: ZipArchive,
        limits: UnpackLimits,
        *,
        files: int,
        starts: array[int] | None,
        repeated: Container[int],
        salt: bytes,
    ) -> None:
        self.archive = archive
        self._limits = limits
        self._files = files
        # For records out of file order only: every record's start, sorted (8 bytes each),
        # to find where the entry after one starts. In file order, that is the next record.
        self._starts = starts
        # Hashes of names that more than one entry may have (spans.repeated).
        self._repeated = repeated
        self._salt = salt

    def __len__(self) -> int:
        return self._files

    def __iter__(self) -> Iterator[Plan]:
        # Names are compared only where their hashes repeat: the sets hold those alone.
        seen = _Seen()
        records = self.archive.records()
        record = next(records, None)
        while record is not None:
            following = next(records, None)
            item = self._plan(record, seen)
            if item is not None:
                item.bound = self._bound(record, following)
                yield item
            record = following

    def _plan(self, record: Record, seen: _Seen) -> Plan | None:
        path = _entry_path(record, name_of(record))
        if path == "":
            return Plan(record.index, record, f"unnamed entry {record.index + 1}", NAMELESS)
        if path is None or is_junk(path):
            return None
        item = Plan(record.index, record, path)
        key = same_name_key(path)
        repeated, salt = self._repeated, self._salt
        maybe_seen = bool(repeated) and spans.name_hash(key, salt) in repeated
        # Its folders that another entry may have as a file (or hold too: then kept); the
        # last entry's are remembered, as entries of one folder mostly follow each other.
        known = seen.last_folders
        seen.last_folders = {
            f: known[f] if f in known else spans.name_hash(f, salt) in repeated
            for f in folders_of(key)
        }
        folders = [f for f, maybe in seen.last_folders.items() if maybe]
        clash = next((f for f in folders if f in seen.files), None)
        mode = record.external_attr >> 16
        unix = record.create_system == 3
        if unix and stat.S_ISLNK(mode):
            item.problem = "the entry is a symbolic link; links are not unpacked"
        elif unix and stat.S_IFMT(mode) in _SPECIAL:
            item.problem = (
                f"the entry is a {_SPECIAL[stat.S_IFMT(mode)]}, not a file; only files are unpacked"
            )
        elif record.flags & 0x1:
            item.problem = "the entry is encrypted; unpack it yourself and upload the files"
        elif len(path) > MAX_PATH:
            item.path = shortened(path)
            item.problem = f"the entry's path is longer than {MAX_PATH} characters"
        elif maybe_seen and key in seen.files:
            item.problem = f"another entry has the same name {shown(path)}"
        elif maybe_seen and spans.wide_hash(key, salt) in seen.folders:
            # One name, a file and a folder: no disk holds both, and a nested archive's
            # files would sit beside this folder's under one path.
            item.problem = f"other entries are in a folder of the same name {shown(path)}"
        elif clash is not None:
            folder = "/".join(path.split("/")[: clash.count("/") + 1])
            item.problem = f"its folder {shown(folder)} has the same name as another entry"
        elif record.uncompressed_size > self._limits.max_entry_bytes:
            item.problem = f"the entry is larger than {self._limits.max_entry_bytes} bytes"
        if maybe_seen:
            seen.files.add(key)
        seen.folders.update(spans.wide_hash(f, salt) for f in folders)
        return item

    def _bound(self, record: Record, following: Record | None) -> int:
        if self._starts is None:
            return self.archive.start(following) if following else self.archive.end.start
        at = bisect.bisect_right(self._starts, self.archive.start(record))
        return self._starts[at] if at < len(self._starts) else self.archive.end.start

    def open(self, item: Plan) -> zipfile.ZipExtFile:
        """A reader of the entry's inflated bytes (services/ingest/entry_data.py)."""
        start = self.archive.start(item.record)
        return entry_data.open_entry(
            self.archive.handle, item.record, start=start, bound=item.bound
        )


@dataclass(slots=True)
class _Seen:
    """Names of entries planned so far, where their hashes repeat: files' names, and
    folders' as 8-byte hashes (a folder's name is not kept: there may be one per level)."""

    files: set[str] = field(default_factory=set)
    folders: set[int] = field(default_factory=set)
    # The last entry's folders, and whether their hashes repeat.
    last_folders: dict[str, bool] = field(default_factory=dict)


def plan(archive: ZipArchive, limits: UnpackLimits) -> Planned:
    """Check the archive as a whole, in one walk of its directory (two when its records
    are not in file order). Raises HostileArchive (too many files, entries sharing bytes or
    running past the directory, a hostile name) or DamagedArchive.

    Kept per entry: a hash of its name and of its folders' (4 bytes each, at most 1 +
    MAX_FOLDER_LEVELS, until the repeated ones are known) and, for records out of file
    order, its start (8 bytes, for the whole unpack)."""
    hashes = spans.SortedRuns("I")
    salt = os.urandom(16)
    last_folders: set[str] = set()
    files = planned = 0
    unsafe: UnsafeName | None = None
    # Records in file order (nearly all archives): spans are checked as they stream by.
    in_order = True
    last_start = -1
    furthest: tuple[int, str] = (0, "")  # the furthest end yet, and whose it is
    overlap: tuple[str, str] | None = None
    for record in archive.records():
        start, end = _span(archive, record)
        if not record.is_dir:
            files += 1
        name = name_of(record)  # every name, so that a damaged one is found here
        if in_order:
            if start < last_start:
                in_order = False
            elif furthest[0] > start and overlap is None:
                overlap = (furthest[1], name)
        last_start = start
        if end > furthest[0]:
            furthest = (end, name)
        if unsafe is not None:
            continue
        try:
            path = _entry_path(record, name)
        except UnsafeName as exc:
            unsafe = exc  # reported after the checks of the whole archive, as before
            continue
        if path is None or is_junk(path):
            continue
        planned += 1
        key = same_name_key(path)
        hashes.append(spans.name_hash(key, salt))
        # A file and a folder may not share a name either. A folder is counted once per run
        # of entries in it: it repeats when a file has its name or entries elsewhere are in
        # it too (then it is compared for nothing).
        folders = folders_of(key)
        for folder in folders:
            if folder not in last_folders:
                hashes.append(spans.name_hash(folder, salt))
        last_folders = set(folders)
    if files > limits.max_entries:
        raise HostileArchive(f"the archive holds {files} files; the limit is {limits.max_entries}")
    starts: array[int] | None = None
    if in_order:
        if overlap is not None:
            first, second = shown(overlap[0]), shown(overlap[1])
            raise HostileArchive(f"entries {first} and {second} overlap (a zip bomb)")
    else:
        starts = _check_spans(archive)
    if furthest[0] > archive.end.start:
        raise HostileArchive(f"entry {shown(furthest[1])} claims more bytes than the archive holds")
    if unsafe is not None:
        raise unsafe
    return Planned(
        archive,
        limits,
        files=planned,
        starts=starts,
        repeated=spans.repeated(hashes),
        salt=salt,
    )


def _check_spans(archive: ZipArchive) -> array[int]:
    """Refuse archives whose entries share bytes (the overlapping and the quoted-overlap zip
    bombs); the furthest end is checked against the directory's start by the caller. This
    also means the compressed sizes add up to at most the archive's size, which the ratio
    budget relies on. For records out of file order: their spans are read in one more walk,
    the names for a verdict in another, on refusal only. Returns every start, sorted."""
    starts = spans.SortedRuns("Q")
    ends = spans.SortedRuns("Q")
    for record in archive.records():
        start, end = _span(archive, record)
        starts.append(start)
        ends.append(end)
    ordered = array("Q", starts)
    del starts
    at = spans.first_overlap(ordered, ends)
    if at is not None:
        first, second = _holding(archive, at)
        raise HostileArchive(f"entries {shown(first)} and {shown(second)} overlap (a zip bomb)")
    return ordered


def _span(archive: ZipArchive, record: Record) -> tuple[int, int]:
    start = archive.start(record)
    return start, spans.clamp(start + entry_data.LOCAL_SIZE + record.compressed_size)


def _holding(archive: ZipArchive, at: int) -> tuple[str, str]:
    """Two entries holding offset `at`, the one starting there second."""
    starting: Record | None = None
    holding: Record | None = None
    for record in archive.records():
        start, end = _span(archive, record)
        if start == at and starting is None:
            starting = record
        elif start <= at < end and holding is None:
            holding = record
    if starting is None or holding is None:  # the directory changed under us
        raise DamagedArchive("the central directory changed while it was read")
    return name_of(holding), name_of(starting)
