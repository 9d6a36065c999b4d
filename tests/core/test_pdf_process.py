"""A PDF read in a child process: every call bounded in time and memory, a hostile page
failing alone, the process (and the next PDF) unharmed."""

from __future__ import annotations

import contextlib
import io
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from bytereview.core import pdf_process
from bytereview.core.limits import MAX_PAGE_TEXT_CHARS
from bytereview.core.pdf_process import (
    PdfBounds,
    PdfProcess,
    PdfTooCostly,
    PdfUnreadable,
    SpoolFull,
    child_environment,
)
from tests.hostile_documents import xobject_bomb
from tests.pdfs import text_pdf
from tests.small_disk import small_tmp

MIB = 1024 * 1024


def test_pages_are_read_in_the_child() -> None:
    with PdfProcess(io.BytesIO(text_pdf(["Invoice Number: INV-7"], pages=3))) as pdf:
        assert pdf.page_count == 3
        assert pdf.call("page_size", 2) == (612.0, 792.0)
        width, height, text, boxes = pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)
        assert (width, height) == (612.0, 792.0)
        assert "INV-7" in text
        assert boxes is not None
        assert len(boxes) == len(text)


def test_a_page_running_past_its_cpu_time_is_ended_and_the_next_pdf_reads() -> None:
    """4**9 drawings keep pdfium busy in C code for half a minute of CPU (the memory cap is
    raised so that only the time bound ends it): the child is killed once it has spent the
    call's CPU seconds, however long that takes on a loaded machine."""
    bounds = PdfBounds(seconds=1.5, memory_bytes=4 * 1024**3)
    with PdfProcess(io.BytesIO(xobject_bomb(10)), bounds=bounds) as pdf:
        before = reaped_children_cpu()  # after opening: idle children it ended are counted
        with pytest.raises(PdfTooCostly) as caught:
            pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)
        used = reaped_children_cpu() - before
    assert str(caught.value) == "reading the PDF (page_text) took more than 1.5 CPU-seconds"
    # The child spent its allowance (not a wall-clock time) and not much more.
    assert 1.3 <= used < 5, used
    with PdfProcess(io.BytesIO(text_pdf(["after"]))) as pdf:
        assert "after" in pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)[2]


def test_a_page_needing_minutes_and_gigabytes_fails_within_the_bounds() -> None:
    """4**11 drawings: whichever bound it meets first (the CPU time, or the memory cap on a
    machine fast enough to reach it first), the child is ended long before the minutes of
    CPU the page takes."""
    with PdfProcess(io.BytesIO(xobject_bomb(12)), bounds=PdfBounds(seconds=2)) as pdf:
        before = reaped_children_cpu()
        with pytest.raises(PdfTooCostly, match=r"more than 2 CPU-seconds|more than \d+ bytes"):
            pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)
        assert reaped_children_cpu() - before < 6


def test_a_call_slow_in_wall_time_but_cheap_in_cpu_is_not_failed() -> None:
    """A child starved of CPU (a busy machine, a throttled pod; here stopped outright) takes
    longer than its CPU bound in wall time: the call is read all the same (it failed for the
    machine's load, for good, when the bound was wall time), and its waiting costs the
    document's bound nothing either."""
    # Bounds no other test uses: a child of this document's own, the only one running.
    bounds = PdfBounds(
        seconds=1, document_seconds=1, memory_bytes=PdfBounds().memory_bytes + 2 * MIB
    )
    with PdfProcess(io.BytesIO(text_pdf(["starved"], pages=2)), bounds=bounds) as pdf:
        [child] = pdf_process_children()
        os.kill(child, signal.SIGSTOP)
        resume = threading.Timer(2.5, continue_process, (child,))
        resume.start()
        try:
            assert "starved" in pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)[2]
        finally:
            resume.join()
        assert "starved" in pdf.call("page_text", 1, 1, MAX_PAGE_TEXT_CHARS)[2]


def test_a_child_stuck_without_using_cpu_is_ended_by_the_wall_clock_backstop() -> None:
    """A child that never spends its CPU seconds (stopped, blocked on a disk) is killed once
    the call has taken `wall_seconds`, and the error says which bound it met."""
    memory = PdfBounds().memory_bytes + 3 * MIB
    with PdfProcess(io.BytesIO(text_pdf(["warm"])), bounds=PdfBounds(memory_bytes=memory)):
        pass  # a child started (and its interpreter's start paid) under the default bounds
    bounds = PdfBounds(seconds=5, wall_seconds=2, memory_bytes=memory)
    with PdfProcess(io.BytesIO(text_pdf(["stuck"])), bounds=bounds) as pdf:
        [child] = pdf_process_children()
        os.kill(child, signal.SIGSTOP)
        try:
            with pytest.raises(PdfTooCostly) as caught:
                pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)
        finally:
            continue_process(child)
        assert not alive(child)
    assert str(caught.value).startswith(
        "reading the PDF (page_text) did not finish in 2 s (it used 0.0 of its 5 CPU-seconds"
    )
    with PdfProcess(io.BytesIO(text_pdf(["after"]))) as pdf:
        assert "after" in pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)[2]


def test_a_page_needing_more_memory_than_allowed_fails_in_the_child_alone() -> None:
    # 4**11 drawings: gigabytes once loaded; the child may map 300 MiB more than at start.
    bounds = PdfBounds(seconds=120, memory_bytes=300 * MIB)
    with (
        pytest.raises(PdfTooCostly, match="memory"),
        PdfProcess(io.BytesIO(xobject_bomb(12)), bounds=bounds) as pdf,
    ):
        pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)


def test_a_pdf_pdfium_cannot_open_is_unreadable_and_leaves_no_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A temporary directory of its own: the system's is shared with tests running alongside,
    # whose spools come and go while this one looks.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(PdfUnreadable):
        PdfProcess(io.BytesIO(b"%PDF-1.7\nnot a pdf at all"))
    assert not os.listdir(tmp_path)


def test_children_at_once_are_bounded_and_released() -> None:
    """Every PdfProcess gives its slot back, failed ones too: more documents than slots
    open one after another without waiting forever."""
    for _ in range(5):
        with pytest.raises(PdfUnreadable):
            PdfProcess(io.BytesIO(b"%PDF-1.7\nbroken"))
    with PdfProcess(io.BytesIO(text_pdf(["x"]))) as pdf:
        assert pdf.page_count == 1


def test_a_pdf_the_temporary_disk_cannot_hold_fails_alone_and_frees_its_slot() -> None:
    """A full temporary disk (ENOSPC, a real small filesystem) fails that PDF with a clear
    reason; it leaves no spool, and more such PDFs than there are slots never leave the
    process waiting for a slot for ever. The next PDF that fits reads as before."""
    big = text_pdf(["too big"]) + b"%" + b"x" * (3 * MIB)  # bytes after %%EOF: still a PDF
    with small_tmp(2 * MIB) as tmp:
        for _ in range(3):
            with pytest.raises(
                SpoolFull, match="larger than the worker's temporary disk"
            ) as caught:
                PdfProcess(io.BytesIO(big))
            assert str(caught.value).startswith("the PDF (3.0 MiB)")
            assert caught.value.never_fits
            assert os.listdir(tmp) == []
        with PdfProcess(io.BytesIO(text_pdf(["fits"]))) as pdf:
            assert "fits" in pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)[2]


def test_a_temporary_disk_without_room_for_a_directory_is_a_wait_not_the_files_fault() -> None:
    """Each spooled PDF has a directory of its own (so a killed process's copies can be
    found and removed): a disk too full even for that is full of other files, not a PDF
    that can never fit."""
    with small_tmp(2 * MIB, inodes=1) as tmp:  # the root alone: nothing more can be made
        with pytest.raises(SpoolFull, match="temporary disk is full") as caught:
            PdfProcess(io.BytesIO(text_pdf(["fits"])))
        assert not caught.value.never_fits
        assert os.listdir(tmp) == []
    with PdfProcess(io.BytesIO(text_pdf(["next"]))) as pdf:  # the slot was given back
        assert "next" in pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)[2]


def test_a_document_has_a_bound_over_all_its_calls_and_charged_work() -> None:
    """Pages each under the call bound and the OCR between them (charged by the caller)
    add up: a document gets `document_seconds` in all, then fails; the child is given back
    unharmed."""
    bounds = PdfBounds(seconds=5, document_seconds=1.5)
    with PdfProcess(io.BytesIO(text_pdf(["slow"], pages=3)), bounds=bounds) as pdf:
        pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)
        pdf.charge(1.6)  # the caller's own work on the document (OCR of a page)
        with pytest.raises(PdfTooCostly, match=r"took more than 1\.5 CPU-seconds"):
            pdf.call("page_text", 1, 1, MAX_PAGE_TEXT_CHARS)
    with PdfProcess(io.BytesIO(text_pdf(["next"]))) as pdf:
        assert "next" in pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)[2]


def test_time_between_calls_is_not_the_documents() -> None:
    """Waiting between pages (for the OCR engine other documents use) costs the document
    nothing: eight scanned PDFs read at once failed for good past a wall-clock bound."""
    bounds = PdfBounds(seconds=5, document_seconds=1.5)
    with PdfProcess(io.BytesIO(text_pdf(["waits"], pages=2)), bounds=bounds) as pdf:
        pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)
        time.sleep(1.6)
        assert "waits" in pdf.call("page_text", 1, 1, MAX_PAGE_TEXT_CHARS)[2]


def test_the_child_is_the_first_to_go_when_memory_runs_out() -> None:
    """Out of memory below its own cap (a pod's limit), the kernel ends the child, not the
    worker: its OOM score is raised to the maximum."""
    with PdfProcess(io.BytesIO(text_pdf(["x"]))) as pdf:
        child = pdf_process_children()
        assert child, "no PDF child running"
        with open(f"/proc/{child[0]}/oom_score_adj") as adj:
            assert adj.read().strip() == "1000"
        assert pdf.page_count == 1


def test_the_child_sees_none_of_the_workers_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """It reads hostile files: no credential, no setting, not the pod's name (which also
    told the platform's tests the child for the worker)."""
    monkeypatch.setenv("BYTEREVIEW_WORKER_TOKEN", "secret")
    monkeypatch.setenv("BYTEREVIEW_POD_NAME", "extract-1")
    assert set(child_environment()) <= {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR"} | {
        "PYTHONPATH",
        "PYTHONHOME",
        "VIRTUAL_ENV",
    }
    with PdfProcess(io.BytesIO(text_pdf(["x"]))) as pdf:
        assert pdf.page_count == 1
        children = pdf_process_children()
        assert children, "no PDF child running"
        for child in children:
            with open(f"/proc/{child}/environ", "rb") as environ:
                names = {e.split(b"=", 1)[0] for e in environ.read().split(b"\0") if e}
            # Set in this process the whole test through: never in a child.
            assert b"PYTEST_CURRENT_TEST" not in names
            assert not any(name.startswith(b"BYTEREVIEW_") for name in names)


# A worker reading a page that keeps pdfium busy for half a minute (4**9 drawings; the
# memory cap is raised so that only the time bound, far off, would end it).
BUSY_WORKER = textwrap.dedent(
    """
    import io
    from bytereview.core.pdf_process import PdfBounds, PdfProcess
    from tests.hostile_documents import xobject_bomb

    bounds = PdfBounds(seconds=120, memory_bytes=4 * 1024**3)
    with PdfProcess(io.BytesIO(xobject_bomb(10)), bounds=bounds) as pdf:
        print("open", flush=True)
        pdf.call("page_text", 0, 1, 100_000)
    """
)


def test_a_child_dies_with_its_worker_even_mid_page() -> None:
    """A worker killed (OOM, SIGKILL at the end of the grace period) while its child is busy
    on a hostile page: the child does not live on for the rest of its time bound, holding
    its memory and CPU in the pod; it is ended with the worker."""
    children: list[int] = []
    with subprocess.Popen(
        [sys.executable, "-c", BUSY_WORKER], stdout=subprocess.PIPE, text=True
    ) as worker:
        try:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "open"
            children = pdf_process_children(worker.pid)
            assert len(children) == 1, children
            time.sleep(1.0)  # the child is now inside pdfium, loading the page
            assert alive(children[0])
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            deadline = time.monotonic() + 5
            while alive(children[0]) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not alive(children[0]), "the PDF child outlived its worker"
        finally:
            worker.kill()
            for child in children:
                if alive(child):
                    os.kill(child, signal.SIGKILL)


def test_a_child_whose_parent_died_before_it_asked_to_die_with_it_ends() -> None:
    """The classic race: the parent dies between starting the child and the child asking
    the kernel to signal it; the child has been adopted by then and no signal will come.
    It notices that its parent is not the one that started it, and ends."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        # PID 1 stands for a parent that is gone: this process is the child's real parent.
        ended = subprocess.run(
            [sys.executable, "-m", "bytereview.pdf_child", str(theirs.fileno()), str(MIB), "1"],
            pass_fds=(theirs.fileno(),),
            env=child_environment(),
            timeout=15,  # without the check, it would wait for requests for ever
        )
        assert ended.returncode == 1


def test_a_child_outlives_the_thread_that_first_needed_it() -> None:
    """Linux ends a child when the *thread* that started it exits (PR_SET_PDEATHSIG is per
    thread), not only the process; idle children serve documents opened from any thread,
    so one first needed on a short-lived thread must still serve the next document."""
    # Bounds no earlier test used: a child of its own, started for the first document.
    bounds = PdfBounds(memory_bytes=PdfBounds().memory_bytes + MIB)
    first: list[int] = []

    def read_once() -> None:
        with PdfProcess(io.BytesIO(text_pdf(["first"])), bounds=bounds) as pdf:
            assert pdf.page_count == 1
            first.extend(pdf_process_children())

    thread = threading.Thread(target=read_once)
    thread.start()
    thread.join()
    assert first
    time.sleep(0.5)  # a parent-death signal would be delivered by now
    assert all(alive(child) for child in first), "a child ended with the thread"
    with PdfProcess(io.BytesIO(text_pdf(["second"])), bounds=bounds) as pdf:
        assert "second" in pdf.call("page_text", 0, 1, MAX_PAGE_TEXT_CHARS)[2]
        assert set(pdf_process_children()) & set(first), "the idle child was not reused"


def reaped_children_cpu() -> float:
    """CPU seconds used by the children of this process that have ended (and been waited
    for) so far: a killed PDF child counts once `PdfProcess` has ended it."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def continue_process(pid: int) -> None:
    """SIGCONT to `pid`, if it still runs."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)


def alive(pid: int) -> bool:
    """`pid` runs (a zombie waiting for whoever adopted it to reap it has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pdf_process_children(of: int | None = None) -> list[int]:
    """Processes of ours (or of process `of`) running bytereview.pdf_child."""
    of = os.getpid() if of is None else of
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    args = cmdline.read().split(b"\0")
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if b"bytereview.pdf_child" in args and parent == of:
                found.append(int(entry))
    return found


def test_idle_children_are_ended_and_reaped_at_exit() -> None:
    """A child kept for the next document is ended by the exit handler: left to the
    interpreter's last garbage collection, each Popen warned "subprocess ... is still
    running" (three a run of the suite, one per test process)."""
    with PdfProcess(io.BytesIO(text_pdf(["kept"]))) as pdf:
        child = pdf._child
    assert child is not None
    assert child.alive  # given back to the idle pool, not ended
    pdf_process._IDLE.close()
    assert child.process.returncode is not None
    with PdfProcess(io.BytesIO(text_pdf(["next"]))) as pdf:
        assert pdf._child is not child  # the pool starts a new one


def test_the_pdfs_a_killed_process_spooled_are_removed_by_the_next(tmp_path: Path) -> None:
    """A worker killed (out of memory) while reading a PDF leaves its spooled copy: in
    Kubernetes /tmp outlives the restarted container. The next process to spool a PDF
    removes it, and its own spool goes when it exits."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    reading = textwrap.dedent(
        """
        import sys
        from bytereview.core.pdf_process import PdfProcess
        from tests.pdfs import text_pdf
        with PdfProcess(__import__("io").BytesIO(text_pdf(["Total: 1.00"]))) as pdf:
            print(pdf.page_count, flush=True)
            sys.stdin.read()
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", reading], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    ) as killed:
        try:
            assert killed.stdout is not None
            assert killed.stdout.readline().strip() == b"1"
            (left,) = tmp_path.glob(f"{pdf_process.SPOOL_PREFIX}*")
            assert [p.suffix for p in left.iterdir() if not p.name.startswith(".")] == [".pdf"]
        finally:
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=30)
    assert left.is_dir()  # nothing removed it
    subprocess.run(
        [sys.executable, "-c", reading], input=b"", env=env, check=True, capture_output=True
    )
    assert list(tmp_path.iterdir()) == []
