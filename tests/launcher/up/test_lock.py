"""One `bytereview up` per data dir, held until the launcher's last child is gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launcher.up.lock import DataDirInUse, data_dir_lock


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    with (
        data_dir_lock(tmp_path),
        pytest.raises(
            DataDirInUse, match=rf"in use by another `bytereview up` \(pid {os.getpid()}\)"
        ),
        data_dir_lock(tmp_path),
    ):
        pass
    with data_dir_lock(tmp_path):  # released with the first holder
        assert (tmp_path / "up.lock").read_text() == f"{os.getpid()}\n"


# A launcher that takes the lock, starts a child inheriting it (as `up` does) and exits.
LAUNCHER = """
import subprocess, sys
from pathlib import Path
from launcher.up.lock import data_dir_lock
with data_dir_lock(Path(sys.argv[1])) as fd:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        pass_fds=(fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    print(child.pid, flush=True)
"""


def test_children_keep_the_lock_after_the_launcher_is_gone(tmp_path: Path) -> None:
    launcher = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(tmp_path)], capture_output=True, text=True, check=True
    )
    orphan = int(launcher.stdout)
    try:
        with (
            pytest.raises(DataDirInUse, match="which is gone; they are stopping"),
            data_dir_lock(tmp_path),
        ):
            pass
    finally:
        os.kill(orphan, 9)
    deadline = time.monotonic() + 10
    while True:
        try:
            with data_dir_lock(tmp_path):
                break
        except DataDirInUse:
            assert time.monotonic() < deadline, "the lock outlived its last holder"
            time.sleep(0.1)
