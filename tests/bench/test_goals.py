"""The benchmarks' `--goal` verdicts (a nightly run exits 1 on a miss; the suite never times):
what counts as a miss, on figures made up here rather than measured."""

from __future__ import annotations

from typing import Any

import pytest

from bench import big_job, goals, throughput_vs_arq

MIB = 1024 * 1024


def run(pipeline: str, tasks_per_s: float, cpu_ms: float, **extra: Any) -> dict[str, Any]:
    row = {
        "pipeline": pipeline,
        "tasks": 100,
        "tasks_succeeded": 100,
        "job_status": "COMPLETED",
        "duplicate_results": 0,
        "tasks_per_s": tasks_per_s,
        "cpu_pipeline_ms_per_task": cpu_ms,
    }
    return {**row, **extra}


def test_throughput_goal_is_twice_the_speed_at_half_the_cpu_against_the_run_before() -> None:
    arq = run("arq", 100.0, 10.0)
    assert throughput_vs_arq.goal_misses([arq, run("bytereview", 200.0, 5.0)]) == []
    misses = throughput_vs_arq.goal_misses([arq, run("bytereview", 199.0, 5.1)])
    assert [m.split(" ")[0] for m in misses] == ["tasks/s", "CPU"]
    # Each ByteReview run is held to the original's run just before it (same round).
    rounds = [arq, run("bytereview", 250.0, 4.0), run("arq", 150.0, 10.0)]
    rounds.append(run("bytereview", 250.0, 4.0))
    assert len(throughput_vs_arq.goal_misses(rounds)) == 1
    # Another checkout's run (--before) is there to compare, not to pass.
    before = run("bytereview before (/tmp/x)", 50.0, 40.0)
    assert throughput_vs_arq.goal_misses([arq, before, run("bytereview", 300.0, 3.0)]) == []


def test_throughput_goal_needs_every_task_done_once_and_the_original_to_compare() -> None:
    arq = run("arq", 100.0, 10.0)
    failed = run("bytereview", 500.0, 1.0, tasks_succeeded=99, job_status="FAILED")
    assert throughput_vs_arq.goal_misses([arq, failed])[0].startswith("job FAILED")
    twice = run("bytereview", 500.0, 1.0, duplicate_results=1)
    assert throughput_vs_arq.goal_misses([arq, twice])[0].startswith("job COMPLETED")
    alone = throughput_vs_arq.goal_misses([run("bytereview", 500.0, 1.0)])
    assert alone == ["no run of the original to compare with (--only bytereview)"]


def test_big_job_goal_is_no_request_over_a_second_and_flat_memory() -> None:
    quick = big_job.Step("list", slowest=0.4, slowest_what="GET files")
    slow = big_job.Step("export", slowest=1.2, slowest_what="GET export.csv")
    fine = big_job.Outcome(steps=[(quick, {"jobs": 130 * MIB, "gateway": 97 * MIB})])
    assert big_job.goal_misses(fine) == []
    grown = big_job.Outcome(steps=[(quick, {"jobs": 300 * MIB}), (slow, {"jobs": 100 * MIB})])
    assert big_job.goal_misses(grown) == [
        "list: jobs peaked at 300 MiB",
        "export: a request took 1.20 s (GET export.csv)",
    ]


def test_a_miss_exits_1_and_says_what_was_missed(capsys: pytest.CaptureFixture[str]) -> None:
    goals.verdict([], "all fast")
    assert capsys.readouterr().out == "goal met: all fast\n"
    with pytest.raises(SystemExit) as exited:
        goals.verdict(["tasks/s 1.50x"], "all fast")
    assert exited.value.code == 1
    assert capsys.readouterr().out == "goal missed: tasks/s 1.50x\n"
