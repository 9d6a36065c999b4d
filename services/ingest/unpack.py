"""Safe, streaming ZIP unpacking from storage to storage.

Entries are copied one at a time in chunks: neither the archive nor an entry is
ever whole in memory, and neither is its central directory: it is counted
(services/ingest/directory.py), checked as a whole and planned entry by entry as it is
streamed (services/ingest/planning.py), so memory does not grow with the entry count.
Limits are enforced on the bytes actually inflated, against one budget per uploaded file
that every nested archive shares (services/ingest/budget.py): nested archives are unpacked
here, depth first, not queued as uploads of their own.

Verdicts, all final on the first delivery:
- hostile archives (overlapping entries, path traversal, over the file limit) are refused
  whole with a reason the user can read; a limit of the whole upload (bytes, ratio, the
  job's file cap) stops every archive of the upload;
- entries that are merely unusable (encrypted, symbolic links, duplicate names, unsupported
  compression, corrupt data, paths too long) become failed files of their own, and every
  good entry is kept;
- only storage or the jobs service failing is retried (StorageFailure, gRPC errors), as
  that is a dependency being down, not the archive's fault.

Entry keys are derived from the entry index, so a redelivered archive rewrites the same
objects and registers nothing twice; an object whose entry was not registered is deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol, cast

from bytereview.core import Storage, storage_keys
from bytereview.core.image_costs import Streamed
from bytereview.core.tiff_ifds import page_problem
from bytereview.core.webp_bytes import webp_problem
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.ingest import directory
from services.ingest.budget import (
    HostileArchive,
    UnpackLimits,
    UploadBudget,
    UploadStopped,
)
from services.ingest.directory import Record
from services.ingest.entry_data import EntryRefused
from services.ingest.entry_names import safe_entry_path
from services.ingest.packages import document_type
from services.ingest.planning import (
    DamagedArchive,
    Plan,
    Planned,
    SplitArchive,
    is_junk,
    open_archive,
    plan,
)
from services.ingest.sniff import (
    SNIFF_BYTES,
    TIFF,
    UNKNOWN,
    WEBP,
    ZIP,
    Sniffed,
    image_problem,
    sniff,
    unsupported_reason,
    zip_directory,
)

__all__ = [
    "REFUSED",
    "ArchiveUnpacker",
    "DamagedArchive",
    "HostileArchive",
    "Outcome",
    "Registered",
    "Reporter",
    "StorageFailure",
    "UnpackLimits",
    "UploadBudget",
    "UploadStopped",
    "is_junk",
    "open_archive",
    "plan",
    "safe_entry_path",
]

CHUNK = 1024 * 1024
# How every verdict refusing a whole archive starts (InspectArchive recognises them by it).
REFUSED = "the archive was refused: "
BATCH = 100
REASON_CHARS = 300


class StorageFailure(Exception):
    """Reading or writing storage failed: a dependency is down, never the archive's fault."""


class _StorageReader:
    """The archive's storage handle, as `zipfile` sees it: every failure of storage itself
    is a StorageFailure, so that no `except OSError` (in zipfile or here) can mistake an
    outage for a damaged archive."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    def read(self, size: int = -1) -> bytes:
        try:
            return self._handle.read(size)
        except Exception as exc:
            raise StorageFailure(f"reading the archive from storage failed: {exc}") from exc

    def seek(self, offset: int, whence: int = 0) -> int:
        try:
            return self._handle.seek(offset, whence)
        except Exception as exc:
            raise StorageFailure(f"reading the archive from storage failed: {exc}") from exc

    def tell(self) -> int:
        return self._handle.tell()

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._handle.close()


@dataclass
class Outcome:
    entries: int = 0
    skipped: int = 0
    bytes_written: int = 0
    # For the user: why the archive was refused; empty when it was unpacked.
    error: str = ""
    # The bare reason, and whether it stops every archive of the upload.
    reason: str = ""
    stops_upload: bool = False

    @property
    def summary(self) -> str:
        return f"{self.entries} file(s) unpacked, {self.skipped} skipped"


@dataclass(frozen=True, slots=True)
class Registered:
    """What the jobs service made of a batch: each entry's file name ('' when it was not
    registered), and why entries were refused, if they were (the job's file cap)."""

    files: Sequence[str]
    refused: str = ""


class Reporter(Protocol):
    async def entries(
        self, archive: str, batch: Sequence[worker_pb.ArchiveEntry]
    ) -> Registered: ...

    async def unpacked(self, file: str, entry: worker_pb.ArchiveEntry, outcome: Outcome) -> None:
        """The verdict on a nested archive (registered as ANALYZING) once it is unpacked."""
        ...


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def _entry_failure(record: Record, exc: Exception) -> str:
    if isinstance(exc, NotImplementedError):
        return (
            f"the entry is compressed with a method that cannot be read "
            f"(method {record.method}: {_short(exc)}); re-pack it with Deflate"
        )
    return f"the entry is damaged and cannot be unpacked ({_short(exc)})"


class ArchiveUnpacker:
    def __init__(
        self,
        *,
        storage: Storage,
        limits: UnpackLimits,
        archive_key: str,
        target_prefix: str,
        archive_name: str = "",
        budget: UploadBudget | None = None,
        depth: int = 0,
        prefix_for: Callable[[str], str] | None = None,
    ) -> None:
        self._storage = storage
        self._limits = limits
        self._archive_key = archive_key
        self._prefix = target_prefix
        self._name = archive_name
        self._budget = budget or UploadBudget(limits)
        self._depth = depth
        self._top = budget is None or depth == 0
        self._prefix_for = prefix_for or (lambda file: f"{target_prefix}{file}/")

    async def run(self, reporter: Reporter) -> Outcome:
        """Unpack every entry (and nested archives), reporting them in batches. The
        archive's verdict lands in Outcome.error; StorageFailure and gRPC errors propagate."""
        outcome = Outcome()
        try:
            raw = await asyncio.to_thread(self._storage.open_read, self._archive_key)
        except FileNotFoundError:
            outcome.error = "the uploaded archive is missing"
            return outcome
        except Exception as exc:
            raise StorageFailure(f"opening the archive failed: {exc}") from exc
        handle = cast(BinaryIO, _StorageReader(raw))
        try:
            archive = await asyncio.to_thread(
                open_archive,
                handle,
                self._limits,
                max_files=self._budget.files_left,
                budget=self._budget,
            )
            plans = await asyncio.to_thread(plan, archive, self._limits)
            self._budget.reserve_files(len(plans))
            await self._unpack(plans, reporter, outcome)
        except SplitArchive as exc:
            outcome.error = str(exc)
        except DamagedArchive as exc:
            # Found by `plan`, before any entry is read: it walks the whole directory first.
            outcome.error = f"the archive is damaged or truncated ({exc})"
        except UploadStopped as exc:
            outcome.error = f"{REFUSED}{exc}"
            outcome.reason = str(exc)
            outcome.stops_upload = True
        except HostileArchive as exc:
            outcome.error = f"{REFUSED}{exc}"
            outcome.reason = str(exc)
        finally:
            handle.close()
        return outcome

    async def _unpack(self, plans: Planned, reporter: Reporter, outcome: Outcome) -> None:
        loop = asyncio.get_running_loop()
        pending: list[worker_pb.ArchiveEntry] = []
        # The plan is read from storage as it goes: groups are taken in the worker thread.
        groups = _groups(iter(plans))
        while True:
            # One thread hop per group: for small entries the hop costs as much as the copy.
            copied, stopped, more = await loop.run_in_executor(None, self._copy_next, plans, groups)
            if not more:
                break
            for entry in copied:
                pending.append(entry)
                if entry.status == pb.SourceFile.FAILED:
                    outcome.skipped += 1
                else:
                    outcome.entries += 1
                    outcome.bytes_written += entry.size_bytes
            nested = [e for e in copied if e.status == pb.SourceFile.ANALYZING]
            if stopped is not None or nested or len(pending) >= BATCH:
                names, refused = await self._register(reporter, pending)
                pending = []
                reason = str(stopped) if stopped is not None else refused
                for entry in nested:
                    name = names.get(entry.index, "")
                    if not name:
                        continue
                    if reason:  # registered as ANALYZING: it needs a verdict all the same
                        await reporter.unpacked(name, entry, _stopped(reason))
                        continue
                    try:
                        await self._unpack_nested(reporter, entry, name)
                    except UploadStopped as exc:
                        reason = str(exc)
                if reason:
                    raise UploadStopped(reason)
        if pending:
            _, refused = await self._register(reporter, pending)
            if refused:
                raise UploadStopped(refused)

    async def _register(
        self, reporter: Reporter, batch: list[worker_pb.ArchiveEntry]
    ) -> tuple[dict[int, str], str]:
        """Report a batch: each entry's file name, and why entries were refused (if they
        were). The objects of entries that were not registered are deleted: nothing may be
        left in storage that no file points to."""
        registered = await reporter.entries(self._name, batch)
        names: dict[int, str] = {}
        if len(registered.files) == len(batch):
            for entry, name in zip(batch, registered.files, strict=True):
                names[entry.index] = name
                if not name:
                    await asyncio.to_thread(self._storage.delete, entry.storage_key)
        return names, registered.refused

    async def _unpack_nested(
        self, reporter: Reporter, entry: worker_pb.ArchiveEntry, name: str
    ) -> None:
        child = ArchiveUnpacker(
            storage=self._storage,
            limits=self._limits,
            archive_key=entry.storage_key,
            target_prefix=self._prefix_for(name),
            archive_name=name,
            budget=self._budget,
            depth=self._depth + 1,
            prefix_for=self._prefix_for,
        )
        outcome = await child.run(reporter)
        await reporter.unpacked(name, entry, outcome)
        if outcome.stops_upload:
            raise UploadStopped(outcome.reason)

    def _copy_next(
        self, plans: Planned, groups: Iterator[list[Plan]]
    ) -> tuple[list[worker_pb.ArchiveEntry], UploadStopped | None, bool]:
        """Copy the next group: (entries, why the upload stopped, False once none is left)."""
        group = next(groups, None)
        if group is None:
            return [], None, False
        done: list[worker_pb.ArchiveEntry] = []
        for item in group:
            try:
                done.append(self._copy(plans, item))
            except UploadStopped as exc:
                return done, exc, True
        return done, None, True

    def _copy(self, plans: Planned, item: Plan) -> worker_pb.ArchiveEntry:
        key = storage_keys.entry_key(self._prefix, item.index)
        entry = worker_pb.ArchiveEntry(index=item.index, path=item.path, storage_key=key)
        if item.problem:
            entry.status = pb.SourceFile.FAILED
            entry.error = item.problem
            return entry
        if self._top:
            self._budget.consume(item.record.compressed_size)
        copied = self._inflate(plans, item, key)
        if isinstance(copied, str):
            entry.status = pb.SourceFile.FAILED
            entry.error = copied
            return entry
        written, digest, found, judged = copied
        if found.archive and (document := self._document(key)):
            # A document whose first entry did not say so: an entry of its own, never an
            # archive to unpack (before the depth limit, which is for archives only).
            found = Sniffed(document)
        entry.size_bytes = written
        entry.sha256 = digest
        entry.media_type = found.media_type
        if written == 0:
            entry.status = pb.SourceFile.FAILED
            entry.error = "the file is empty"
        elif found.archive:
            if self._depth + 1 >= self._limits.max_depth:
                entry.status = pb.SourceFile.FAILED
                entry.error = (
                    f"archives nested deeper than {self._limits.max_depth} levels are refused"
                )
            else:
                # Unpacked right after it is registered, with this upload's budget.
                entry.status = pb.SourceFile.ANALYZING
        elif not found.extractable:
            entry.status = pb.SourceFile.UNSUPPORTED
            entry.error = unsupported_reason(found)
        elif problem := _decoding_problem(found, written, judged) or self._tiff_problem(found, key):
            entry.status = pb.SourceFile.FAILED
            entry.error = problem
        elif found.media_type == "application/pdf":
            # PDFs are analysed like uploads (page count, damage) by their own ingest message.
            entry.status = pb.SourceFile.UPLOADED
        else:
            entry.status = pb.SourceFile.READY
            entry.page_count = 1
        return entry

    def _inflate(self, plans: Planned, item: Plan, key: str) -> _Copied | str:
        """Copy one entry to `key`: (size, sha256, type, its walk), or why the entry is
        unusable (its partial object removed). UploadStopped and StorageFailure propagate,
        object removed."""
        try:
            source = plans.open(item)
        except StorageFailure:
            raise
        except EntryRefused as exc:
            return str(exc)
        except Exception as exc:  # its local header: missing, damaged, or lying
            return _entry_failure(item.record, exc)
        with source:
            return self._copy_data(source, item, key)

    def _copy_data(self, source: zipfile.ZipExtFile, item: Plan, key: str) -> _Copied | str:
        hasher = hashlib.sha256()
        judged = Streamed()
        head = b""
        tail = b""
        written = 0
        try:
            target = self._storage.open_write(key)
        except Exception as exc:
            raise StorageFailure(f"writing to storage failed: {exc}") from exc
        try:
            while True:
                chunk = source.read(CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                self._budget.charge(len(chunk))
                if written > self._limits.max_entry_bytes:
                    raise _TooLarge(
                        f"the entry is larger than {self._limits.max_entry_bytes} bytes"
                    )
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                if len(chunk) >= directory.TAIL_BYTES:
                    tail = chunk[-directory.TAIL_BYTES :]
                else:
                    tail = (tail + chunk)[-directory.TAIL_BYTES :]
                hasher.update(chunk)
                judged.feed(chunk)
                _write(target, chunk)
        except (StorageFailure, UploadStopped):
            self._discard(target, key)
            raise
        except Exception as exc:  # the entry's own data: damaged, unsupported, too large
            self._discard(target, key)
            return str(exc) if isinstance(exc, _TooLarge) else _entry_failure(item.record, exc)
        try:
            target.close()
        except Exception as exc:
            self._discard(target, key)
            raise StorageFailure(f"writing to storage failed: {exc}") from exc
        found = sniff(head)
        if found.media_type == UNKNOWN and zip_directory(tail, written):
            found = Sniffed(ZIP)  # a self-extracting archive: data before the ZIP
        return written, hasher.hexdigest(), found, judged

    def _document(self, key: str) -> str:
        """The document type of a copied ZIP entry by its directory ('' for an archive):
        read back from storage, as the directory may be larger than the tail kept."""
        try:
            raw = self._storage.open_read(key)
        except Exception as exc:
            raise StorageFailure(f"reading from storage failed: {exc}") from exc
        handle = cast(BinaryIO, _StorageReader(raw))
        try:
            return document_type(handle, self._limits, self._budget)
        finally:
            handle.close()

    def _tiff_problem(self, found: Sniffed, key: str) -> str:
        """Why a TIFF entry's first page would cost too much to open (core/tiff_ifds.py):
        its directory may lie anywhere in the file, so it is read back from storage."""
        if found.media_type != TIFF:
            return ""
        try:
            with self._storage.open_read(key) as handle:
                return page_problem(handle)
        except Exception as exc:
            raise StorageFailure(f"reading from storage failed: {exc}") from exc

    def _discard(self, target: BinaryIO, key: str) -> None:
        """Drop a partly written object: abort where the backend can, delete in any case."""
        abort = getattr(target, "abort", None)
        try:
            if callable(abort):
                abort()
            else:
                target.close()
        except Exception:  # noqa: S110 - the delete below is what matters
            pass
        try:
            self._storage.delete(key)
        except Exception as exc:
            raise StorageFailure(f"removing a partial entry failed: {exc}") from exc


# An entry copied: its size, sha256, type, and its walk (core/image_costs.py).
_Copied = tuple[int, str, Sniffed, Streamed]


def _decoding_problem(found: Sniffed, size: int, judged: Streamed) -> str:
    """Why an image entry would cost too much to decode ('' if it would not): its declared
    pixels, a WebP's bytes (read whole to decode), what its walk found (a JPEG's scans, a
    PNG's chunks, a GIF's head, a WebP's chunks)."""
    if found.media_type == WEBP and (problem := webp_problem(size)):
        return problem
    return image_problem(found) or judged.problem()


def _stopped(reason: str) -> Outcome:
    return Outcome(error=f"{REFUSED}{reason}", reason=reason, stops_upload=True)


class _TooLarge(Exception):
    pass


def _write(target: BinaryIO, chunk: bytes) -> None:
    try:
        target.write(chunk)
    except Exception as exc:
        raise StorageFailure(f"writing to storage failed: {exc}") from exc


GROUP_ENTRIES = 64
GROUP_BYTES = 8 * 1024 * 1024


def _groups(plans: Iterator[Plan]) -> Iterator[list[Plan]]:
    """Consecutive entries, at most GROUP_ENTRIES of them or GROUP_BYTES of input per group
    (a group is reported only once it is all copied, so groups stay small)."""
    group: list[Plan] = []
    size = 0
    for item in plans:
        group.append(item)
        size += item.record.compressed_size
        if len(group) >= GROUP_ENTRIES or size >= GROUP_BYTES:
            yield group
            group, size = [], 0
    if group:
        yield group
