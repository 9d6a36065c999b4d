"""`bytereview cleanup` against a database that is not ByteReview's says so in a line and
creates nothing: run outside a data directory it made an empty .bytereview/bytereview.db,
then failed on 'no such table' with a traceback of a hundred lines (the CLI trial)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.launcher.cli_process import run_cli


@pytest.mark.parametrize("exists", [False, True], ids=["no-file", "empty-database"])
def test_cleanup_of_a_database_without_our_tables_says_so(tmp_path: Path, exists: bool) -> None:
    path = tmp_path / "elsewhere.db"
    if exists:
        sqlite3.connect(path).close()
    url = f"sqlite+aiosqlite:///{path}"
    done = run_cli("cleanup", "all", cwd=tmp_path, BYTEREVIEW_DATABASE_URL=url)
    assert done.returncode == 1, done.stderr  # a usage error, as the README says
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("bytereview cleanup: ")
    assert ("has no ByteReview tables" if exists else "no database at") in line
    assert "bytereview migrate" in line
    assert path.exists() == exists
