"""The quick case of `bench/big_job.py` (#18): a ZIP of 1,200 entries on PostgreSQL under
`bytereview up`, failed, retried, completed, listed and exported. The bench prints the
timings and memory of the 100,000 case (README); this checks what the same code finds:
every task retried and done once, every file and result listed through the keyset pages,
every row exported. Timings are never asserted. 1,200, not more: enough for two pages of
ListFiles and ListResults (1,000 a page), five task-building batches (250) and three export
pages (500); more files only make the suite slower."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.big_job import bench, parse
from tests.servers import PostgresServer

SIZE = 1200


@pytest.mark.timeout(600)
def test_a_job_of_1200_files_fails_retries_completes_and_exports(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    database = postgres.create_database("bigjob_quick")
    # Every task fails through the real path (batched ReportTaskFailures) first.
    args = parse(["--size", str(SIZE), "--fail-for", "300"])
    got = bench(args, database=database, data_dir=tmp_path / "data", env={})
    assert got.failed_before_retry == SIZE
    assert got.final["status"] == "COMPLETED"
    assert got.final["tasksByStatus"] == {"SUCCEEDED": SIZE}
    assert got.files_listed == SIZE + 1  # the archive and its entries
    assert got.results_listed == SIZE
    assert got.csv_rows == SIZE
    assert set(got.exported_bytes) == {"csv", "json", "xlsx"}
    assert all(size > 0 for size in got.exported_bytes.values())
    steps = [step.name for step, _ in got.steps]
    assert steps[:2] == ["create", "upload"]
    assert {"retry", "retry settles", "completion", "export xlsx"} <= set(steps)
