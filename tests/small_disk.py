"""A real full disk for the code that spools files to the temporary directory: a small
tmpfs mounted over a fresh directory (root only) made Python's temporary directory."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def small_disk(size_bytes: int, *, inodes: int = 0) -> Iterator[str]:
    """A fresh directory on a filesystem of `size_bytes` (writes past it fail with ENOSPC),
    and of `inodes` files and directories if given (1: its root alone, so creating anything
    fails with ENOSPC), unmounted when the block ends. Fails the test where mounting is not
    permitted (never a silent skip)."""
    if os.geteuid() != 0:
        # The suite runs as root anyway: its PostgreSQL starts as the postgres user.
        pytest.fail("mounting a small tmpfs needs root")
    where = tempfile.mkdtemp(prefix="bytereview-small-disk-")
    limit = f",nr_inodes={inodes}" if inodes else ""
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}{limit}", "tmpfs", where],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        os.rmdir(where)
        pytest.fail(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", where], check=True)
        os.rmdir(where)


@contextlib.contextmanager
def small_tmp(size_bytes: int, *, inodes: int = 0) -> Iterator[str]:
    """`small_disk`, as this process's `tempfile.gettempdir()` until the block ends."""
    with small_disk(size_bytes, inodes=inodes) as where:
        before = tempfile.tempdir
        tempfile.tempdir = where
        try:
            yield where
        finally:
            tempfile.tempdir = before
