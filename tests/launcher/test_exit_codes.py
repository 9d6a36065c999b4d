"""The CLI's exit codes as the README gives them: 1 for a usage error, so that 2 says only
that some of the work failed (argparse's own 2 for a usage error made them one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.launcher.cli_process import run_cli


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
    done = run_cli(*argv, cwd=tmp_path)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert done.stderr.strip()
