"""Safe, streaming ZIP unpacking from storage to storage.

Entries are copied one at a time in chunks: neither the archive nor an entry is
ever whole in memory. Limits are enforced on the bytes actually inflated, not
on the sizes the headers claim. Hostile archives (bombs, overlapping entries,
path traversal, symlinks) are refused whole with a reason the user can read;
entries that are merely unusable (encrypted, duplicate names) become failed
files of their own. Entry keys are derived from the entry index, so a
redelivered archive rewrites the same objects and registers nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import posixpath
import stat
import zipfile
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from bytereview.core import Settings, Storage
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.ingest.sniff import SNIFF_BYTES, sniff

CHUNK = 1024 * 1024
JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
JUNK_DIRS = ("__MACOSX/",)
BATCH = 100


@dataclass(frozen=True, slots=True)
class UnpackLimits:
    max_entries: int = 10_000
    max_total_bytes: int = 8 * 1024**3
    max_entry_bytes: int = 2 * 1024**3
    max_ratio: float = 200.0
    max_depth: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> UnpackLimits:
        return cls(
            max_entries=settings.ingest_max_entries,
            max_total_bytes=settings.ingest_max_total_bytes,
            max_entry_bytes=settings.max_upload_bytes,
            max_ratio=settings.ingest_max_ratio,
            max_depth=settings.ingest_max_depth,
        )


class HostileArchive(Exception):
    """The whole archive is refused; the message is shown to the user."""


@dataclass
class Outcome:
    entries: int = 0
    skipped: int = 0
    bytes_written: int = 0
    error: str = ""

    @property
    def summary(self) -> str:
        return f"{self.entries} file(s) unpacked, {self.skipped} skipped"


@dataclass
class _Plan:
    index: int
    info: zipfile.ZipInfo
    path: str
    problem: str = ""


def safe_entry_path(name: str) -> str:
    """The entry's path if it stays inside the archive's folder; HostileArchive otherwise."""
    if "\\" in name:
        raise HostileArchive(f"entry {name!r} uses backslashes in its path")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise HostileArchive(f"entry {name!r} has an absolute path")
    parts = name.split("/")
    if ".." in parts:
        raise HostileArchive(f"entry {name!r} points outside the archive (..)")
    if any(ord(c) < 32 for c in name):
        raise HostileArchive(f"entry {name!r} has control characters in its name")
    cleaned = posixpath.normpath(name)
    if cleaned.startswith("..") or cleaned in ("", "."):
        raise HostileArchive(f"entry {name!r} has an invalid path")
    return cleaned


def is_junk(path: str) -> bool:
    return (
        path.startswith(JUNK_DIRS)
        or posixpath.basename(path) in JUNK_NAMES
        or (posixpath.basename(path).startswith("._"))
    )


def plan(archive: zipfile.ZipFile, limits: UnpackLimits) -> list[_Plan]:
    """Check the central directory and decide, per entry, what to do. Raises HostileArchive."""
    infos = archive.infolist()
    files = [i for i in infos if not i.is_dir()]
    if len(files) > limits.max_entries:
        raise HostileArchive(
            f"the archive holds {len(files)} files; the limit is {limits.max_entries}"
        )
    _check_overlaps(infos)
    seen: set[str] = set()
    plans: list[_Plan] = []
    for index, info in enumerate(infos):
        if info.is_dir():
            safe_entry_path(info.filename)
            continue
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_ISLNK(mode):
            raise HostileArchive(f"entry {info.filename!r} is a symbolic link")
        path = safe_entry_path(info.filename)
        if is_junk(path):
            continue
        item = _Plan(index, info, path)
        if info.flag_bits & 0x1:
            item.problem = "the entry is encrypted; unpack it yourself and upload the files"
        elif path.lower() in seen:
            item.problem = f"another entry has the same name {path!r}"
        elif info.file_size > limits.max_entry_bytes:
            item.problem = f"the entry is larger than {limits.max_entry_bytes} bytes"
        seen.add(path.lower())
        plans.append(item)
    return plans


def _check_overlaps(infos: list[zipfile.ZipInfo]) -> None:
    """Refuse archives whose entries share bytes: the classic overlapping-entry zip bomb."""
    spans = sorted((i.header_offset, i.compress_size, i.filename) for i in infos if not i.is_dir())
    for (offset, size, name), (next_offset, _, next_name) in itertools.pairwise(spans):
        # A local header is at least 30 bytes; data follows it.
        if offset == next_offset or offset + 30 + size > next_offset:
            raise HostileArchive(f"entries {name!r} and {next_name!r} overlap (a zip bomb)")


class ArchiveUnpacker:
    def __init__(
        self, *, storage: Storage, limits: UnpackLimits, archive_key: str, target_prefix: str
    ) -> None:
        self._storage = storage
        self._limits = limits
        self._archive_key = archive_key
        self._prefix = target_prefix
        self._total = 0

    async def run(
        self, report: Callable[[list[worker_pb.ArchiveEntry]], Awaitable[None]]
    ) -> Outcome:
        """Unpack every entry, reporting them in batches. Errors land in Outcome.error."""
        outcome = Outcome()
        loop = asyncio.get_running_loop()
        try:
            handle = await asyncio.to_thread(self._storage.open_read, self._archive_key)
        except FileNotFoundError:
            outcome.error = "the uploaded archive is missing"
            return outcome
        try:
            try:
                archive = await asyncio.to_thread(zipfile.ZipFile, handle)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                outcome.error = f"the archive is damaged or truncated ({exc})"
                return outcome
            with archive:
                plans = await asyncio.to_thread(plan, archive, self._limits)
                batch: list[worker_pb.ArchiveEntry] = []
                for group in _groups(plans):
                    # One thread hop per group: for small entries the hop costs as much as
                    # the copy itself.
                    for entry in await loop.run_in_executor(None, self._copy_all, archive, group):
                        batch.append(entry)
                        if entry.status == pb.SourceFile.FAILED:
                            outcome.skipped += 1
                        else:
                            outcome.entries += 1
                            outcome.bytes_written += entry.size_bytes
                    if len(batch) >= BATCH:
                        await report(batch)
                        batch = []
                if batch:
                    await report(batch)
        except HostileArchive as exc:
            outcome.error = f"the archive was refused: {exc}"
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            outcome.error = f"the archive is damaged or truncated ({exc})"
        finally:
            handle.close()
        return outcome

    def _copy_all(
        self, archive: zipfile.ZipFile, group: list[_Plan]
    ) -> list[worker_pb.ArchiveEntry]:
        return [self._copy(archive, item) for item in group]

    def _copy(self, archive: zipfile.ZipFile, item: _Plan) -> worker_pb.ArchiveEntry:
        key = f"{self._prefix}{item.index}"
        entry = worker_pb.ArchiveEntry(index=item.index, path=item.path, storage_key=key)
        if item.problem:
            entry.status = pb.SourceFile.FAILED
            entry.error = item.problem
            return entry
        hasher = hashlib.sha256()
        head = b""
        written = 0
        budget = min(
            self._limits.max_entry_bytes,
            int(max(item.info.compress_size, 1) * self._limits.max_ratio) + 1024 * 1024,
        )
        with archive.open(item.info) as source, self._storage.open_write(key) as target:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                self._total += len(chunk)
                if written > budget:
                    _abort(target)
                    raise HostileArchive(
                        f"entry {item.path!r} inflates beyond {budget} bytes (a zip bomb)"
                    )
                if self._total > self._limits.max_total_bytes:
                    _abort(target)
                    raise HostileArchive(
                        f"the archive inflates beyond {self._limits.max_total_bytes} bytes"
                    )
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                hasher.update(chunk)
                target.write(chunk)
        entry.size_bytes = written
        entry.sha256 = hasher.hexdigest()
        found = sniff(head)
        entry.media_type = found.media_type
        if written == 0:
            entry.status = pb.SourceFile.FAILED
            entry.error = "the file is empty"
        elif found.archive:
            entry.status = pb.SourceFile.UPLOADED  # the jobs service queues it for ingest
        elif not found.extractable:
            entry.status = pb.SourceFile.UNSUPPORTED
            entry.error = f"files of type {found.media_type} cannot be extracted"
        elif found.media_type == "application/pdf":
            # PDFs are analysed like uploads (page count, damage) by their own ingest message.
            entry.status = pb.SourceFile.UPLOADED
        else:
            entry.status = pb.SourceFile.READY
            entry.page_count = 1
        return entry


GROUP_ENTRIES = 64
GROUP_BYTES = 8 * 1024 * 1024


def _groups(plans: list[_Plan]) -> Iterator[list[_Plan]]:
    """Consecutive entries, at most GROUP_ENTRIES of them or GROUP_BYTES of input per group
    (a group is reported only once it is all copied, so groups stay small)."""
    group: list[_Plan] = []
    size = 0
    for item in plans:
        group.append(item)
        size += item.info.compress_size
        if len(group) >= GROUP_ENTRIES or size >= GROUP_BYTES:
            yield group
            group, size = [], 0
    if group:
        yield group


def _abort(target: BinaryIO) -> None:
    abort = getattr(target, "abort", None)
    if callable(abort):
        abort()
