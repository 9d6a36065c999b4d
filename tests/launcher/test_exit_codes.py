"""The CLI's exit codes as the README gives them: 1 for a usage error, so that 2 says only
that some of the work failed (argparse's own 2 for a usage error made them one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "argv",
    [
        ["extract", "--bogus"],
        ["extract", "--limit", "abc", "a.pdf"],
        ["extract", "--field", "total:currency"],
        ["jobs", "--nope"],
        ["nonsense"],
    ],
    ids=["unknown-flag", "bad-number", "no-files", "subcommand-flag", "no-such-command"],
)
def test_a_usage_error_exits_1(argv: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    done = subprocess.run(
        [sys.executable, "-m", "launcher.cli", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert done.stderr.strip()
