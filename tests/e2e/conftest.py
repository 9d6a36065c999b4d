"""The whole platform as `bytereview up` runs it: once per test module, or once per test."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest


@dataclass
class Platform:
    url: str
    process: subprocess.Popen[str]
    data_dir: Path
    # Every line the launcher printed so far (prefixed by process name), kept up to date.
    lines: list[str] = field(default_factory=list)

    @property
    def marker(self) -> bytes:
        """The environment entry every child of this platform carries (see `pids_with_env`)."""
        return f"BYTEREVIEW_DATA_DIR={self.data_dir.resolve()}".encode()

    def children(self) -> dict[str, int]:
        """The platform's live processes by name: nats, jobs, ingest-1, extract-1, gateway..."""
        found = {}
        for pid in pids_with_env(self.marker):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue  # exited meanwhile
            pods = [e.split(b"=", 1)[1] for e in environ if e.startswith(b"BYTEREVIEW_POD_NAME=")]
            if argv[0].endswith(b"nats-server"):
                found["nats"] = pid
            elif pods:
                found[pods[0].decode()] = pid
            elif b"launcher.cli" in argv:
                found[argv[argv.index(b"launcher.cli") + 1].decode()] = pid
        return found

    def wait_for_line(self, pattern: str, timeout: float = 60, after: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                found = re.search(pattern, line)
                if found:
                    return found
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(self.lines[-40:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


@contextmanager
def launched(
    data_dir: Path, extra_env: dict[str, str] | None = None, *, port: int | None = 0
) -> Iterator[Platform]:
    """`bytereview up` in a subprocess, up and serving; stopped on exit.

    `port=None` leaves the gateway port to BYTEREVIEW_GATEWAY_PORT (or its default).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    env.update(extra_env or {})
    argv = [sys.executable, "-m", "launcher.cli", "up", "--data-dir", str(data_dir)]
    if port is not None:
        argv += ["--port", str(port)]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    platform = Platform("", process, data_dir)
    # Keep draining output so the children never block on a full pipe.
    reader = threading.Thread(target=_collect, args=(process, platform.lines), daemon=True)
    reader.start()
    try:
        try:
            found = platform.wait_for_line(r"ByteReview is up at (http://\S+)", timeout=120)
        except AssertionError:
            process.kill()
            raise
        platform.url = found.group(1)
        yield platform
    finally:
        platform.stop()
        # The process is gone, so the reader meets the end of the pipe; then close it.
        reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _collect(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One platform shared by a module's tests; none of them may stop it."""
    with launched(tmp_path_factory.mktemp("platform")) as running:
        assert pids_with_env(running.marker), "children not found"
        yield running


def pids_with_env(marker: bytes) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(proc.name))
    return found


def wait_status(client: httpx.Client, job: str, states: set[str], timeout: float = 90) -> str:
    """Poll the job over REST until its status is one of `states`; the last status seen."""
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = str(client.get(f"/v1/{job}").json()["status"])
        if status in states:
            return status
        time.sleep(0.2)
    return status
