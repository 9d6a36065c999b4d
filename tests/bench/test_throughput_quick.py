"""The quick case of `bench/throughput_vs_arq.py` (#18): ByteReview's side on 300 tasks, on
its own PostgreSQL and nats-server with the no-op bench extractor, as the bench runs it.
The bench prints tasks/s and CPU per task beside the original pipeline (README); this
checks that what it measures is a job done right: once it had been failing every task
for weeks unnoticed. Every task succeeds on its first attempt with exactly one result, the
outbox drains, and the trail has events per batch, not per task. Timings are never
asserted."""

from __future__ import annotations

import pytest

from bench.throughput_vs_arq import parse, run_bytereview

TASKS = 300


@pytest.mark.timeout(600)
def test_the_bench_job_completes_every_task_once() -> None:
    got = run_bytereview(parse(["--tasks", str(TASKS), "--timeout", "300"]))
    assert got["job_status"] == "COMPLETED"
    assert (got["tasks_succeeded"], got["tasks_failed"]) == (TASKS, 0)
    assert (got["results_rows"], got["duplicate_results"]) == (TASKS, 0)
    assert got["max_attempts"] == 1
    assert got["outbox_unsent"] == 0
    assert got["job_events"] < TASKS // 2
    assert got["tasks_per_s"] > 0
