"""The supervisor with real processes: restarts with growing delays, children die with it."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from launcher.up.supervisor import Child, Supervisor


async def test_a_crash_looping_child_is_restarted_with_growing_delays(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    # Records when it started, then dies at once.
    crash = f"import time; open({str(starts)!r}, 'a').write(f'{{time.monotonic()}}\\n'); raise SystemExit(3)"
    supervisor = Supervisor()
    await supervisor.start(Child("crasher", [sys.executable, "-c", crash], dict(os.environ)))
    try:
        async with asyncio.timeout(30):
            while len(_times(starts)) < 4:  # noqa: ASYNC110 - another process writes the file
                await asyncio.sleep(0.1)
    finally:
        await supervisor.stop_all()
    times = _times(starts)
    assert len(times) >= 4, times
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 1 s, 2 s, 4 s of backoff, plus the interpreter's start-up each time.
    assert 1.0 <= gaps[0] < 2.0, gaps
    assert 2.0 <= gaps[1] < 4.0, gaps
    assert 4.0 <= gaps[2] < 8.0, gaps
    stopped = len(times)
    await asyncio.sleep(1.5)
    assert len(_times(starts)) == stopped, "restarted after stop_all"


def _times(path: Path) -> list[float]:
    return [float(x) for x in path.read_text().split()] if path.exists() else []


# A launcher running one child under the Supervisor, printing the child's pid, then waiting.
LAUNCHER = """
import asyncio, os, sys
from launcher.up.supervisor import Child, Supervisor

async def main() -> None:
    supervisor = Supervisor()
    child = Child("child", sys.argv[1:], dict(os.environ))
    await supervisor.start(child)
    print(child.process.pid, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""

# A Python child that has the lifeline but not the kernel's help (PDEATHSIG cleared), and
# ignores SIGTERM as a wedged process would: only the lifeline's hard exit can end it.
WEDGED = """
import ctypes, signal, sys, time
from pathlib import Path
from launcher.up import lifeline
ctypes.CDLL(None).prctl(lifeline.PR_SET_PDEATHSIG, 0, 0, 0, 0)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
lifeline.hold(1.0)
Path(sys.argv[1]).touch()
time.sleep(3600)
"""


def _orphan_after_kill(child_argv: list[str], ready: Path | None = None) -> int:
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, *child_argv], stdout=subprocess.PIPE, text=True
    )
    assert launcher.stdout is not None
    with launcher.stdout:
        pid = int(launcher.stdout.readline())
        deadline = time.monotonic() + 20
        while ready is not None and not ready.exists():
            assert time.monotonic() < deadline, "the child never got ready"
            time.sleep(0.05)
        assert _alive(pid)
        launcher.kill()
        launcher.wait()
    return pid


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent has not reaped it yet


def test_the_kernel_ends_a_non_python_child_when_the_launcher_is_killed() -> None:
    # `sleep` knows nothing of the lifeline: PR_SET_PDEATHSIG alone must end it.
    orphan = _orphan_after_kill(["sleep", "3600"])
    assert _gone_within(orphan, 5)


def test_the_lifeline_ends_a_wedged_python_child_when_the_launcher_is_killed(
    tmp_path: Path,
) -> None:
    ready = tmp_path / "ready"
    orphan = _orphan_after_kill([sys.executable, "-c", WEDGED, str(ready)], ready)
    assert not _gone_within(orphan, 0.5), "SIGTERM is ignored: only the hard exit ends it"
    assert _gone_within(orphan, 5)


def test_a_child_started_alone_has_no_lifeline() -> None:
    # Outside `up` (Kubernetes, a terminal) stdin is not the launcher's pipe: nothing happens.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from launcher.up import lifeline; import time; lifeline.hold(0.1); time.sleep(2)",
        ],
        stdin=subprocess.DEVNULL,
        env={**os.environ, "BYTEREVIEW_UP_PID": "1"},
    )
    try:
        assert child.wait(timeout=10) == 0
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
