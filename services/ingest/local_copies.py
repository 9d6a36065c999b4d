"""Local copies of stored files, kept for RenderPage while there is room for them.

A page is drawn from a file on the temporary disk (pdfium reads by path in a child
process; Pillow decodes a TIFF through libtiff from a file). Copied afresh for every page,
a user paging through a 300-page, 200 MB PDF downloaded 60 GB from storage. A stored
object never changes under its key (uploads are create-only, core/storage.py), so a copy
stays true while the key exists: copies are kept here, by storage key, within a byte
budget, and the least recently used unused ones deleted first.

- A copy in use (being drawn) is never deleted under its reader: each counts its users,
  and only copies no one uses are evicted. Those in use may take the budget past its
  bound for as long as they are read; the unused ones go as soon as they are done with.
- A file larger than the whole budget is still copied and drawn, and deleted after.
- A copy unused for IDLE_SECONDS is deleted whatever the room (`expire`, every minute).
- Requests for a key being downloaded wait for that download, and share its copy or its
  failure. A failed download keeps nothing: the next request tries again.
- Whether the caller may see the file is not this module's business: RenderPage asks the
  jobs service first (a deleted file or job is refused there, before any copy is read).

Copies live in a directory of their own in the temporary directory, removed on `close`
(the servicer's end) or at the latest when the process exits; a killed process's directory
is removed by the next cache made (core/owned_dirs.py).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bytereview.core import Storage, Unavailable
from bytereview.core.owned_dirs import OwnedDirectory
from bytereview.core.spool import SpoolFull, copy_to_disk, disk_full

__all__ = ["DEFAULT_MAX_BYTES", "IDLE_SECONDS", "LocalCopies"]

DEFAULT_MAX_BYTES = 1024**3
# A copy unused this long is deleted (`expire`), however much room is left: paging through
# a document asks for its pages seconds apart, and a file deleted since (a job deleted, an
# ephemeral job's data cleaned up) is not left on the pod's disk for as long as no other
# file pushes it out, which on a quiet pod could be days.
IDLE_SECONDS = 600.0
_PREFIX = "bytereview-copies-"


@dataclass(eq=False, slots=True)
class _Copy:
    path: Path
    size: int
    users: int
    kept: bool = False  # in the cache; otherwise deleted once its last user is done
    last_used: float = 0.0  # time.monotonic() when its last user was done


class _Download:
    """One download in flight; requests for the same key wait for it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.waiters = 0  # counted as users of the copy when it is there
        self.copy: _Copy | None = None
        self.error: BaseException | None = None


class LocalCopies:
    """Copies of stored files on the temporary disk, at most `max_bytes` of those not in
    use (0 keeps none). Thread-safe: pages are drawn on threads (`asyncio.to_thread`)."""

    def __init__(self, storage: Storage, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._storage = storage
        self.max_bytes = max_bytes
        # At exit (or if never closed) the directory goes all the same.
        self._owned = OwnedDirectory(_PREFIX)
        self.directory = self._owned.path
        self._remove = self._owned.remove
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, _Copy] = OrderedDict()  # least recently used first
        self._downloads: dict[str, _Download] = {}
        self._kept_bytes = 0
        self._files = 0  # on disk or being written, kept or not
        self._names = itertools.count()
        self._closed = False
        self.downloads = 0  # started, whether they succeeded or not

    @property
    def kept_bytes(self) -> int:
        """The bytes of the copies kept (in use or not)."""
        with self._lock:
            return self._kept_bytes

    def kept(self) -> list[str]:
        """The keys kept, least recently used first."""
        with self._lock:
            return list(self._kept)

    @contextlib.contextmanager
    def copy(self, key: str, what: str) -> Iterator[str]:
        """The path of a local copy of the object at `key`, not deleted before the block
        ends. `what` names the file in a full disk's SpoolFull ("the PDF"). A storage error
        (no such object) passes unchanged; Unavailable once the cache is closed."""
        found = self._acquire(key, what)
        try:
            yield str(found.path)
        finally:
            self._release(found)

    def _acquire(self, key: str, what: str) -> _Copy:
        with self._lock:
            if self._closed:
                raise Unavailable("the page cannot be drawn now: the service is stopping")
            if (kept := self._kept.get(key)) is not None:
                if kept.users or kept.path.exists():
                    kept.users += 1
                    self._kept.move_to_end(key)
                    return kept
                # Deleted behind the cache's back (a /tmp cleaner on a long-lived dev
                # machine): copied again rather than failing every page of the file.
                self._drop(key)
                self._files -= 1
            running = self._downloads.get(key)
            if running is None:
                ours = self._downloads[key] = _Download()
                self._files += 1
                self.downloads += 1
                path = self.directory / str(next(self._names))
            else:
                running.waiters += 1
        if running is None:
            return self._download(key, ours, path, what)
        running.done.wait()
        if running.copy is None:
            assert running.error is not None
            raise running.error  # the same failure: a download each would not fare better
        return running.copy  # already counting this request among its users

    def _download(self, key: str, download: _Download, path: Path, what: str) -> _Copy:
        try:
            size = _copy(self._storage, key, path, what)
        except BaseException as exc:
            path.unlink(missing_ok=True)
            with self._lock:
                del self._downloads[key]
                self._files -= 1
                download.error = exc
                removable = self._removable()
            download.done.set()
            if removable:
                self._remove()
            raise
        with self._lock:
            del self._downloads[key]
            found = _Copy(path, size, users=1 + download.waiters)
            if not self._closed and size <= self.max_bytes:
                found.kept = True
                self._kept[key] = found
                self._kept_bytes += size
            victims = self._evict()
            download.copy = found
        download.done.set()
        self._delete(victims)
        return found

    def _release(self, found: _Copy) -> None:
        with self._lock:
            found.users -= 1
            if found.users:
                return
            found.last_used = time.monotonic()
            victims = self._evict() if found.kept else [found]
        self._delete(victims)

    def _evict(self) -> list[_Copy]:
        """Unused copies to delete, oldest first, until the kept ones fit (under the lock)."""
        victims: list[_Copy] = []
        for key, kept in list(self._kept.items()):
            if self._kept_bytes <= self.max_bytes:
                break
            if kept.users == 0:
                victims.append(self._drop(key))
        return victims

    def _drop(self, key: str) -> _Copy:
        dropped = self._kept.pop(key)
        dropped.kept = False
        self._kept_bytes -= dropped.size
        return dropped

    def _delete(self, victims: list[_Copy]) -> None:
        """Delete the files of copies no longer kept nor used (outside the lock)."""
        if not victims:
            return
        for victim in victims:
            victim.path.unlink(missing_ok=True)
        with self._lock:
            self._files -= len(victims)
            removable = self._removable()
        if removable:
            self._remove()

    def _removable(self) -> bool:
        """Whether the directory may go: closed, and no file left in it (under the lock)."""
        return self._closed and self._files == 0

    def expire(self, *, now: float | None = None) -> int:
        """Delete the copies unused for more than IDLE_SECONDS (by `now`, a time.monotonic()
        reading); how many. The service calls it every minute."""
        now = time.monotonic() if now is None else now
        idle_seconds = IDLE_SECONDS
        with self._lock:
            victims = [
                self._drop(key)
                for key, kept in list(self._kept.items())
                if kept.users == 0 and now - kept.last_used > idle_seconds
            ]
        self._delete(victims)
        return len(victims)

    def close(self) -> None:
        """Delete every copy: the unused ones now, those in use once their readers are done
        (then the directory goes too). Later requests are Unavailable."""
        with self._lock:
            self._closed = True
            victims = [self._drop(key) for key in list(self._kept)]
            # Those still read are deleted by their last reader (`kept` is now False).
            unused = [victim for victim in victims if victim.users == 0]
            removable = not unused and self._removable()
        if removable:
            self._remove()
        self._delete(unused)


def _copy(storage: Storage, key: str, path: Path, what: str) -> int:
    with storage.open_read(key) as source:
        try:
            target = path.open("xb")
        except OSError as exc:
            if not disk_full(exc):
                raise
            # No room even for an empty file (its inodes used up): the disk is full of
            # other files, a wait like a copy cut short.
            raise SpoolFull(
                f"the worker's temporary disk is full: {what} could not be copied to it "
                f"({exc.strerror})"
            ) from exc
        try:
            return copy_to_disk(source, target, what)
        finally:
            # After a full disk the flush of what is left fails again: the SpoolFull that
            # said so must not be lost to it (the file is unlinked by the caller).
            with contextlib.suppress(OSError):
                target.close()
