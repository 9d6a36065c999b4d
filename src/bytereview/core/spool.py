"""Copies of stored files on the worker's temporary disk, and what a full disk means.

A PDF is read by pdfium from a path (core/pdf_process.py) and a large image is decoded
from a local copy (services/extract/reading/pages.py), so workers copy files to the temporary
directory: in Kubernetes an emptyDir of bounded size (the chart's `tmpSizeLimit`). When it
has no room (ENOSPC; EDQUOT under a quota; EFBIG past a file-size limit) the copy fails
with `SpoolFull`: never an unexplained "internal error", never the worker's end. Two cases:
- the file is larger than the whole temporary filesystem (or past the file-size limit):
  no copy of it can succeed on such a disk, so it is the file's failure, said at once
  (`never_fits`), not after every attempt was spent on it;
- otherwise the disk is full of other copies in flight, or of the node's other files: a
  dependency that is down for a while (core/outages.py), waited out with the message held,
  never counted against the file's attempts.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
from typing import IO, BinaryIO

__all__ = ["SpoolFull", "copy_to_disk", "disk_full"]

_CHUNK = 1024 * 1024
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class SpoolFull(Exception):
    """The worker's temporary disk had no room left for a copy of a file; says how far
    the copy got. `never_fits`: the file is larger than the disk could ever hold."""

    def __init__(self, message: str, *, never_fits: bool = False) -> None:
        super().__init__(message)
        self.never_fits = never_fits


def disk_full(exc: OSError) -> bool:
    """Whether `exc` says the disk (or a quota, or a file-size limit) had no room."""
    return exc.errno in _DISK_FULL


def copy_to_disk(source: BinaryIO, target: IO[bytes], what: str) -> int:
    """Copy `source` into `target` (a temporary file) and flush it; the bytes copied.
    `what` names the file in the error ("the PDF"). SpoolFull when the disk is full;
    other errors (storage failing while read) pass unchanged."""
    copied = 0
    try:
        while chunk := source.read(_CHUNK):
            target.write(chunk)
            copied += len(chunk)
        target.flush()
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            raise
        size, disk = _size(source), _disk_size(target)
        if exc.errno == errno.EFBIG or (size is not None and disk is not None and size > disk):
            room = f"{_mib(disk)} MiB" if disk is not None else "its limit"
            weight = f"{_mib(size)} MiB" if size is not None else "size unknown"
            raise SpoolFull(
                f"{what} ({weight}) is larger than the worker's temporary disk can hold ({room})",
                never_fits=True,
            ) from exc
        raise SpoolFull(
            f"the worker's temporary disk is full: {what} could not be copied to it "
            f"({exc.strerror} after {_mib(copied)} MiB)"
        ) from exc
    return copied


def _mib(size: int) -> str:
    return f"{size / 1024**2:.1f}"


def _size(source: BinaryIO) -> int | None:
    """The whole source's size (stored files open seekable), or None when it cannot say."""
    try:
        return source.seek(0, io.SEEK_END)
    except (OSError, ValueError):
        return None


def _disk_size(target: IO[bytes]) -> int | None:
    """The size of the filesystem holding `target`, used or not, or None when unknown.

    A SpooledTemporaryFile is asked through the temporary directory (ours never name
    another): one whose rollover to disk failed has no file, and asking it for one tries the
    rollover again, which then fails on its own half-done state."""
    try:
        if isinstance(target, tempfile.SpooledTemporaryFile):
            stats = os.statvfs(tempfile.gettempdir())
        else:
            stats = os.fstatvfs(target.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return stats.f_blocks * stats.f_frsize
