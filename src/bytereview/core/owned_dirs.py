"""Temporary directories a killed process does not leave behind for good.

A process removes its temporary files when it ends, but not when it is killed (SIGKILL, the
kernel's out-of-memory killer). In Kubernetes the temporary directory is an emptyDir that
outlives a restarted container, so every crash would leave its files on the pod's disk until
the disk is full. Each directory made here holds a file locked (flock) by its owner for as
long as the directory is in use; making one first removes the directories of the same
prefix whose lock nobody holds (their owner is gone).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import weakref
from pathlib import Path

# Locked by the directory's owner while it lives; named only once locked (see _claim).
_OWNER = ".owner"


class OwnedDirectory:
    """A fresh directory in the temporary directory, named `prefix` + random; removed with
    everything in it on `remove()` or, at the latest, when the process exits normally."""

    def __init__(self, prefix: str) -> None:
        remove_abandoned(prefix)
        self.path, owner = _claim(prefix)
        self._remove = weakref.finalize(self, _remove_directory, self.path, owner)

    def remove(self) -> None:
        """Remove the directory and everything in it (once; later calls do nothing)."""
        self._remove()


def remove_abandoned(prefix: str) -> int:
    """Remove the directories of `prefix` whose owner ended without removing them; how many.

    A flock conflicts with any other open of the file, in this process too, so the
    directories of live owners (tests run several servers in one process) are left alone."""
    removed = 0
    for directory in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = os.open(directory / _OWNER, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # being set up (not locked yet), or not one of ours
        try:
            fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(owner)
            continue  # its owner lives
        _remove_directory(directory, owner)
        removed += 1
    return removed


def _claim(prefix: str) -> tuple[Path, int]:
    """A fresh directory, and the descriptor of its locked owner file."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    staged = directory / f"{_OWNER}.new"
    owner = os.open(staged, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    fcntl.flock(owner, fcntl.LOCK_EX)
    # Named for others to see only once locked: one unlocked means its owner is gone.
    staged.rename(directory / _OWNER)
    return directory, owner


def _remove_directory(directory: Path, owner: int) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    os.close(owner)  # unlocks
