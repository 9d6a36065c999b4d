"""Copies of stored files on the worker's temporary disk, and what a full disk means.

A PDF is read by pdfium from a path (core/pdf_process.py) and a large image is decoded
from a local copy (services/extract/reading/pages.py), so workers copy files to the temporary
directory: in Kubernetes an emptyDir of bounded size (the chart's `tmpSizeLimit`). When it
has no room (ENOSPC; EDQUOT under a quota; EFBIG past a file-size limit) the copy fails
with `SpoolFull`, which callers turn into a failed attempt of that one file, saying so:
never an unexplained "internal error", never the worker's end. An attempt, not the file's
final failure: the disk may be full of other copies in flight only for a while, and
another attempt may run on another pod.
"""

from __future__ import annotations

import errno
from typing import IO, BinaryIO

__all__ = ["SpoolFull", "copy_to_disk"]

_CHUNK = 1024 * 1024
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class SpoolFull(Exception):
    """The worker's temporary disk had no room left for a copy of a file; says how far
    the copy got."""


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
        raise SpoolFull(
            f"the worker's temporary disk is full: {what} could not be copied to it "
            f"({exc.strerror} after {copied / 1024**2:.1f} MiB)"
        ) from exc
    return copied
