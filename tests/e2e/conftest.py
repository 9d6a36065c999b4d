"""The whole platform as `bytereview up` runs it, once per test module."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA_DIR: list[str] = []


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    data_dir = tmp_path_factory.mktemp("platform")
    DATA_DIR[:] = [str(data_dir.resolve())]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bytereview.cli", "up", "--data-dir", str(data_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    url = ""
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"ByteReview is up at (http://\S+)", line)
        if found:
            url = found.group(1)
            break
    assert url, "the platform did not come up:\n" + "".join(lines[-40:])
    assert pids_with_env(f"BYTEREVIEW_DATA_DIR={DATA_DIR[0]}".encode()), "children not found"
    # Keep draining output so the children never block on a full pipe.
    import threading

    threading.Thread(target=lambda: [lines.append(x) for x in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    yield url, process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


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
