"""Children of `bytereview up` die with it, even when it is killed with SIGKILL.

Two independent mechanisms, because either alone has a gap:

- Linux: between fork and exec every child asks the kernel for SIGTERM when its parent dies
  (`prctl(PR_SET_PDEATHSIG)`). It covers nats-server, a Go binary we cannot change.
- Any POSIX system: each Python child's stdin is a pipe only the launcher holds open. End of
  file on it means the launcher is gone; the child then stops as on SIGTERM (it drains) and,
  should it not have exited after a short grace (a wedged child ignores SIGTERM), exits
  hard. An orphan nobody supervises must not keep serving.

The grace is short on purpose: when the launcher is gone, nats-server and the jobs service are
going too, so a drain cannot finish its acks and reports anyway (seen: a worker's NATS drain
waiting on the dead server). Whatever it held comes back by AckWait, as after a kill -9.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable

# Set by the launcher in every child's environment: its pid. A child started by anything else
# (Kubernetes, a terminal) has no lifeline and reads nothing from stdin.
LAUNCHER_PID_ENV = "BYTEREVIEW_UP_PID"
PR_SET_PDEATHSIG = 1
# How long an orphaned child may take to stop before it exits hard.
ORPHAN_GRACE_SECONDS = 5.0


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Resolved now, in the launcher: between fork and exec only already-loaded code may run.
_PRCTL = _load_prctl()


def die_with_launcher(launcher_pid: int) -> Callable[[], None] | None:
    """A `preexec_fn` that makes the kernel SIGTERM the child when the launcher dies (Linux)."""
    prctl = _PRCTL
    if prctl is None:
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # The launcher may have died between fork and prctl: then no signal will come.
        if os.getppid() != launcher_pid:
            os._exit(1)

    return preexec


def hold(grace_seconds: float = ORPHAN_GRACE_SECONDS) -> None:
    """In a child of `up`: stop when the launcher is gone; exit hard if stopping takes too long."""
    if not os.environ.get(LAUNCHER_PID_ENV) or not _stdin_is_pipe():
        return
    threading.Thread(target=_watch, args=(grace_seconds,), name="lifeline", daemon=True).start()


def _watch(grace_seconds: float) -> None:
    with contextlib.suppress(OSError):
        while os.read(0, 4096):  # the launcher never writes: this returns b"" once it is gone
            pass
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace_seconds)
    os._exit(70)  # still here after the grace period: nobody else will end this process


def _stdin_is_pipe() -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(0).st_mode)
    except OSError:
        return False
