"""One `bytereview up` per data dir: an exclusive lock on `<data dir>/up.lock`.

Two launchers on one directory would run two nats-servers on one JetStream store and two jobs
services on one database. The lock is `flock`ed by the launcher and inherited by its children,
so it is held until the last process of the platform has exited, not just the launcher. The
file holds the launcher's pid for the refusal message; it is never deleted (unlinking a lock
file lets a third process lock a new file while the old one is still held).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = "up.lock"


class DataDirInUse(Exception):
    """Another `bytereview up` (or the children it left stopping) holds the data dir."""


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[int]:
    """Holds the lock while the block runs; yields its file descriptor (for the children)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirInUse(_refusal(data_dir, os.pread(fd, 64, 0))) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield fd
    finally:
        os.close(fd)


def _refusal(data_dir: Path, content: bytes) -> str:
    try:
        holder = int(content.decode().strip())
    except ValueError:
        return f"{data_dir} is in use by another `bytereview up`; stop it first"
    if _alive(holder):
        return (
            f"{data_dir} is in use by another `bytereview up` (pid {holder}); stop it first "
            "or give this one another --data-dir"
        )
    return (
        f"{data_dir} is still held by the processes of `bytereview up` pid {holder}, which is "
        "gone; they are stopping, try again in a few seconds"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
