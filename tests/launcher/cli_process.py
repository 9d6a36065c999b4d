"""`bytereview ...` run as a process, as a user runs it: none of the caller's BYTEREVIEW_
settings, this tree's code, in `cwd`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*argv: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """`settings`: BYTEREVIEW_* variables for the run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    env.update(settings, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    return subprocess.run(
        [sys.executable, "-m", "launcher.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
