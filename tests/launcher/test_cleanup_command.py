"""`bytereview cleanup` against a database that is not ByteReview's says so in a line and
creates nothing: run outside a data directory it made an empty .bytereview/bytereview.db,
then failed on 'no such table' with a traceback of a hundred lines (the CLI trial)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cleanup(cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    env.update(
        BYTEREVIEW_DATABASE_URL=url, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    )
    return subprocess.run(
        [sys.executable, "-m", "launcher.cli", "cleanup", "all"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize("exists", [False, True], ids=["no-file", "empty-database"])
def test_cleanup_of_a_database_without_our_tables_says_so(tmp_path: Path, exists: bool) -> None:
    path = tmp_path / "elsewhere.db"
    if exists:
        sqlite3.connect(path).close()
    done = _cleanup(tmp_path, f"sqlite+aiosqlite:///{path}")
    assert done.returncode == 1, done.stderr  # a usage error, as the README says
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("bytereview cleanup: ")
    assert ("has no ByteReview tables" if exists else "no database at") in line
    assert "bytereview migrate" in line
    assert path.exists() == exists
