"""A PDF read in a child process of its own, every call bounded in time and memory.

What pdfium does with a page is not bounded by the file's size. A form XObject that draws
another one four times, twelve levels deep, is a 2 KiB PDF whose first page costs pdfium
minutes and gigabytes to load (4**11 drawings); a scanned page declared 14,400 pt square
is a 4.8 GB bitmap at 200 dpi. A C call cannot be interrupted from Python: run in the
worker, such a page holds the process's pdfium lock (core/pdfium.py) for as long as it
runs, every other PDF of the process waits behind it, and its memory takes the pod down
with the other users' work in flight.

So pages are loaded, read and drawn in a child process, one open document at a time. A
call on which the child spends more than `PdfBounds.seconds` of CPU time is ended by
killing the child; so is one still running after `PdfBounds.wall_seconds` of wall-clock
time, a backstop far above it for a child stuck without using CPU. CPU time, not wall time:
a child starved of CPU (a busy machine, a pod throttled at its limit) reads slower, and its
file must not fail for the machine's load, only for its own cost. An allocation past
`PdfBounds.memory_bytes` fails in the child alone (its address space is capped), and so
does a crash of pdfium. Each is a `PdfTooCostly` the caller turns into a failure of that
one file. A document's own bound, `PdfBounds.document_seconds`, counts the CPU seconds of
its calls in the child and what the caller charges for its work on the document (OCR's
CPU time). Children are separate processes, so they need no lock between them; at most
`PDF_PROCESSES` are busy at once per process, which bounds the memory they may take
together. A child that came through a document unharmed serves the next one (starting one
costs ~0.15 s of CPU, more than reading a text PDF; what of it follows the first request
counts in that call), up to `_DOCUMENTS_PER_CHILD`.

`PdfProcess.call(name, *args)` runs one of the child's operations (bytereview/pdf_child.py)
on the open document. The child is a fresh interpreter (not a fork of a worker with gRPC
and event-loop threads) importing only pypdfium2, ready in a fraction of a second. It dies
with the worker (on Linux; see pdf_child.die_with_parent), even in the middle of a page.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from queue import SimpleQueue
from typing import Any, BinaryIO

from bytereview.core.limits import (
    PDF_CALL_SECONDS,
    PDF_CALL_WALL_SECONDS,
    PDF_DOCUMENT_SECONDS,
    PDF_MEMORY_BYTES,
    PDF_PROCESSES,
)
from bytereview.core.owned_dirs import OwnedDirectory
from bytereview.core.spool import SpoolFull, copy_to_disk, disk_full
from bytereview.pdf_child import bounded_scale

__all__ = [
    "PdfBounds",
    "PdfProcess",
    "PdfTooCostly",
    "PdfUnreadable",
    "SpoolFull",
    "bounded_scale",
]

# A child's heap may fragment over many documents: it is replaced after this many.
_DOCUMENTS_PER_CHILD = 200
_SLOTS = threading.BoundedSemaphore(PDF_PROCESSES)


class PdfUnreadable(Exception):
    """pdfium cannot open the file or a page (damaged, password-protected); says why."""


class PdfTooCostly(Exception):
    """Reading the PDF took longer or needed more memory than allowed (or crashed pdfium)."""


@dataclass(frozen=True, slots=True)
class PdfBounds:
    # CPU seconds the child may spend on one call (open, one page read or drawn).
    seconds: float = PDF_CALL_SECONDS
    # Wall-clock seconds one call may take, whatever its CPU: a backstop for a child stuck
    # without using CPU. Far above `seconds` (core/limits.py says how far, and why).
    wall_seconds: float = PDF_CALL_WALL_SECONDS
    # Address space the child may map beyond what it maps once started.
    memory_bytes: int = PDF_MEMORY_BYTES
    # CPU seconds of work on one document: its calls' CPU time in the child and what the
    # caller charges for its own work on it (`PdfProcess.charge`: OCR's CPU time), so that
    # fifty pages just under the call bound do not hold a child for most of an hour. Not
    # the wall clock since opening: eight scanned PDFs read at once take the shared OCR
    # engine in turn, and a long one failed for good past 600 s of mostly waiting.
    document_seconds: float = PDF_DOCUMENT_SECONDS


# All a child needs of the worker's environment to start an interpreter. It reads hostile
# files, so it never holds the worker's settings: credentials (the worker token, a model's
# API key, the database URL) and the pod's identity stay with the worker.
_CHILD_ENVIRONMENT = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
)


def child_environment() -> dict[str, str]:
    return {key: os.environ[key] for key in _CHILD_ENVIRONMENT if key in os.environ}


class _Starter:
    """Starts every child from one thread that lives as long as the process. On Linux a
    child dies with its parent (pdf_child.die_with_parent), and its parent is the *thread*
    that started it: started on an executor's thread that later exits, an idle child would
    be killed while another thread reads a document with it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._requests: SimpleQueue[
            tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]
        ] = SimpleQueue()

    def start(self, launch: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="pdf-child-starter", daemon=True
                )
                self._thread.start()
        started: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((launch, started))
        return started.result()

    def _serve(self) -> None:
        while True:
            launch, started = self._requests.get()
            try:
                started.set_result(launch())
            except BaseException as exc:  # the caller's to handle (no interpreter, no fds)
                started.set_exception(exc)


_STARTER = _Starter()


def _document_message(bounds: PdfBounds) -> str:
    return f"reading the PDF took more than {bounds.document_seconds:g} CPU-seconds"


_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class _CpuClock:
    """The CPU seconds (user and system, all its threads) a child has spent since the clock
    was made, read from /proc/PID/stat. Where there is no /proc (not Linux), the wall-clock
    seconds instead: a bound that may fail a starved child, but still a bound."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        start = self._read()
        self._wall = start is None
        self._start = time.monotonic() if start is None else start
        self.last = 0.0  # the last reading

    def _read(self) -> float | None:
        try:
            with open(f"/proc/{self._pid}/stat") as stat:
                # The command name (field 2) may hold spaces and parentheses: fields are
                # counted after its closing one. utime and stime are fields 14 and 15.
                fields = stat.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND
        except (OSError, IndexError, ValueError):
            return None

    def spent(self) -> float:
        """The CPU seconds so far (read while the child is not reaped: its PID may be
        another process's after that)."""
        now = time.monotonic() if self._wall else self._read()
        if now is not None:
            self.last = max(self.last, now - self._start)
        return self.last


class _Child:
    """One child interpreter (bytereview/pdf_child.py) and the connection to it."""

    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self.documents = 0
        self.last_cpu = 0.0  # CPU seconds the child spent on the last call (`ask`)
        ours, theirs = socket.socketpair()
        with theirs:
            command = [
                sys.executable,
                "-m",
                "bytereview.pdf_child",
                str(theirs.fileno()),
                str(memory_bytes),
                str(os.getpid()),
            ]
            self.process = _STARTER.start(
                lambda: subprocess.Popen(
                    command,
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                    env=child_environment(),
                )
            )
        self.conn = Connection(ours.detach())

    def ask(self, request: tuple[Any, ...], doing: str, bounds: PdfBounds, left: float) -> Any:
        """The child's answer to `request`; PdfTooCostly (the child killed) past the bounds
        or the `left` CPU seconds of the document's. `last_cpu` is then the CPU seconds the
        child spent on it, answered or not."""
        self.last_cpu = 0.0
        if left <= 0:
            raise PdfTooCostly(_document_message(bounds))
        clock = _CpuClock(self.process.pid)
        try:
            self.conn.send(request)
        except OSError as exc:
            self.kill()
            raise PdfTooCostly(f"{doing}: the PDF reader stopped") from exc
        try:
            self._wait(clock, doing, bounds, left)
        finally:
            self.last_cpu = clock.last
        try:
            kind, value = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise PdfTooCostly(
                f"{doing} needed more than {bounds.memory_bytes} bytes of memory "
                "or crashed the PDF reader"
            ) from exc
        if kind == "ok":
            return value
        if kind == "unreadable":
            raise PdfUnreadable(value)
        if kind == "costly":  # the child refused the work itself (too much text)
            raise PdfTooCostly(value)
        if kind == "memory":
            self.kill()
            raise PdfTooCostly(f"{doing} needed more than {bounds.memory_bytes} bytes of memory")
        raise RuntimeError(value)  # our own code failed in the child: a bug, not the file

    def _wait(self, clock: _CpuClock, doing: str, bounds: PdfBounds, left: float) -> None:
        """Until the child answers (or dies: the answer is then its EOF); the child killed
        and PdfTooCostly once it has spent the call's CPU seconds (`bounds.seconds`, or the
        document's `left` when fewer) or `bounds.wall_seconds` have passed.

        The CPU time is read by the parent from /proc (`_CpuClock`), between waits for the
        answer, rather than enforced by the child on itself (RLIMIT_CPU and SIGXCPU): the
        kernel counts a child busy in pdfium's C code all the same, the parent decides which
        bound tripped and says so, and a bound can be a fraction of a second (the document's
        last seconds; RLIMIT_CPU counts whole seconds)."""
        allowance = min(bounds.seconds, left)
        started = time.monotonic()
        while True:
            spent = clock.spent()
            if spent >= allowance:
                self.kill()
                if left < bounds.seconds:
                    raise PdfTooCostly(_document_message(bounds))
                raise PdfTooCostly(f"{doing} took more than {bounds.seconds:g} CPU-seconds")
            waited = time.monotonic() - started
            if waited >= bounds.wall_seconds:
                self.kill()
                raise PdfTooCostly(
                    f"{doing} did not finish in {bounds.wall_seconds:g} s "
                    f"(it used {spent:.1f} of its {allowance:g} CPU-seconds: "
                    "the PDF reader was stuck or starved of CPU)"
                )
            # Waiting at most the CPU seconds the child has left (it runs pdfium on one
            # thread, so it cannot spend more in that time) and at most a second (should it
            # use more threads) keeps any overshoot under a second; at least a clock tick.
            if self.conn.poll(min(max(allowance - spent, 0.01), 1.0, bounds.wall_seconds - waited)):
                clock.spent()  # the call's whole CPU time, for the document's bound
                return

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()
        self.conn.close()


class _Idle:
    """Children between documents, ready for the next one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: list[_Child] = []

    def take(self, memory_bytes: int) -> _Child:
        with self._lock:
            while self._children:
                child = self._children.pop()
                if child.alive and child.memory_bytes == memory_bytes:
                    return child
                child.kill()
        return _Child(memory_bytes)

    def give_back(self, child: _Child) -> None:
        if not child.alive or child.documents >= _DOCUMENTS_PER_CHILD:
            child.kill()
            return
        with self._lock:
            self._children.append(child)

    def close(self) -> None:
        """End the idle children (at exit: they would die with the process anyway, but
        their Popen objects, collected while the children still ran, each warned
        "subprocess ... is still running")."""
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            child.kill()


_IDLE = _Idle()
atexit.register(_IDLE.close)


# Each spooled PDF has a directory of its own (core/owned_dirs.py): a worker killed while
# reading a PDF leaves its copy behind, and in Kubernetes the temporary directory outlives a
# restarted container, so a crash-looping worker would fill the pod's disk with them. The
# next PDF spooled removes them.
SPOOL_PREFIX = "bytereview-pdf-"


@contextmanager
def _spooled(source: BinaryIO) -> Iterator[str]:
    """A copy of `source` in the temporary directory, removed on exit: pdfium reads the
    file by path in the child, and a storage handle cannot cross over."""
    try:
        owned = OwnedDirectory(SPOOL_PREFIX)
    except OSError as exc:
        if not disk_full(exc):
            raise
        # Not even room for the directory: the disk is full of other files, a wait.
        raise SpoolFull(
            f"the worker's temporary disk is full: the PDF could not be copied to it "
            f"({exc.strerror})"
        ) from exc
    try:
        spool = tempfile.NamedTemporaryFile(dir=owned.path, suffix=".pdf")  # noqa: SIM115 - closed below
        try:
            copy_to_disk(source, spool, "the PDF")
            yield spool.name
        finally:
            # Flushes what is left: on a full disk that fails again (the file is removed all
            # the same), and the SpoolFull that said so must not be lost to it.
            with suppress(OSError):
                spool.close()
    finally:
        owned.remove()


class PdfProcess:
    """An open PDF in a child process; use as a context manager (the document is closed,
    and the child given back or ended, on exit). Blocking: async code calls it through
    `asyncio.to_thread`. `page_count` is known once it is open.

    Read from `source` (a storage stream), it is first copied to the temporary disk:
    SpoolFull (core/spool.py) when the disk has no room for that copy. Or from
    `local_copy`, a file already on local disk (RenderPage's kept copies): a context
    manager, entered once the slot is taken, that gives its path and keeps the file until
    it exits, when the document is closed. Either way a slot is held while the file is
    being made, so the copies on disk are bounded by the slots, as the children are."""

    def __init__(
        self,
        source: BinaryIO | None = None,
        *,
        bounds: PdfBounds | None = None,
        local_copy: AbstractContextManager[str] | None = None,
    ) -> None:
        if (source is None) == (local_copy is None):
            raise TypeError("PdfProcess reads either a stream or a local copy")
        self._bounds = bounds or PdfBounds()
        self._child: _Child | None = None
        self._file = ExitStack()
        self._slot = False
        self._spent = 0.0  # CPU seconds of the document's bound used
        if local_copy is None:
            assert source is not None
            local_copy = _spooled(source)
        _SLOTS.acquire()
        self._slot = True
        try:
            path = self._file.enter_context(local_copy)  # lazy: the copy is made here
            self._child = _IDLE.take(self._bounds.memory_bytes)
            self._child.documents += 1
            self.page_count: int = self._ask(("open", path), "opening the PDF")
        except BaseException:
            self.close()
            raise

    def call(self, operation: str, *args: Any) -> Any:
        """The child's `operation` on the open PDF; PdfTooCostly past the bounds,
        PdfUnreadable when pdfium cannot read what it was asked."""
        return self._ask((operation, args), f"reading the PDF ({operation})")

    def charge(self, seconds: float) -> None:
        """Counts the caller's own work on this document (OCR of its pages, in CPU seconds)
        in its `document_seconds`: the next call past them fails."""
        self._spent += seconds

    def _ask(self, request: tuple[Any, ...], doing: str) -> Any:
        assert self._child is not None, "the PDF is closed"
        child = self._child
        try:
            return child.ask(
                request, doing, self._bounds, self._bounds.document_seconds - self._spent
            )
        finally:
            self._spent += child.last_cpu

    def close(self) -> None:
        try:
            child, self._child = self._child, None
            if child is not None and child.alive:
                try:
                    # Closing is quick, whatever the document's bound says.
                    child.ask(("close",), "closing the PDF", self._bounds, self._bounds.seconds)
                except (PdfTooCostly, PdfUnreadable, RuntimeError):
                    child.kill()
                _IDLE.give_back(child)
        finally:
            try:
                self._file.close()  # the file pdfium read: removed, or given back
            finally:
                # Given back whatever happened to the file, or more PDFs than slots wait for ever.
                if self._slot:
                    self._slot = False
                    _SLOTS.release()

    def __enter__(self) -> PdfProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
