"""Chaos, quick cases: processes of `bytereview up` killed mid-job lose and duplicate nothing.

The model is the Gemini stand-in answering slowly, so a job is reliably mid-way when the
blow lands; AckWait is shortened so a killed worker's messages come back within seconds
(recovery time is the bench's business: bench/chaos.py). The full matrix (every component,
NATS and PostgreSQL restarts, 1,000 files) is bench/chaos.py.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bytereview.core.settings import DEV_TOKEN
from tests.e2e.chaos import Invoices, kill, outcome, start_when_ready, submit, wait_end, wait_for
from tests.e2e.conftest import Platform, launched, pids_with_env
from tests.gemini_standin import API_KEY, GeminiStandIn, Reply, RunningStandIn, Seen

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}
MAX_DELIVER = 5


def slow_answer(seen: Seen) -> Reply:
    time.sleep(0.3)  # a model call, on the stand-in's own thread
    return Reply(values={"invoice_number": "seen"})


@pytest.fixture(scope="module")
def gemini() -> Iterator[RunningStandIn]:
    with RunningStandIn(GeminiStandIn(default=slow_answer)) as running:
        yield running


def chaos_env(gemini: RunningStandIn) -> dict[str, str]:
    return {
        "BYTEREVIEW_GEMINI_API_KEY": API_KEY,
        "BYTEREVIEW_GEMINI_BASE_URL": gemini.base_url,
        "BYTEREVIEW_EXTRACT_CONCURRENCY": "2",
        "BYTEREVIEW_LOCAL_MAX_WORKERS": "1",  # one extract worker: the one we hit
        "BYTEREVIEW_ACK_WAIT_SECONDS": "4",
        "BYTEREVIEW_MAX_DELIVER": str(MAX_DELIVER),
    }


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, gemini: RunningStandIn
) -> Iterator[Platform]:
    with launched(tmp_path_factory.mktemp("chaos"), chaos_env(gemini)) as running:
        yield running


def test_kill_9_of_the_extract_worker_mid_job(platform: Platform) -> None:
    invoices = Invoices(loose=8)
    with httpx.Client(base_url=platform.url, headers=AUTH, timeout=30) as client:
        job = submit(client, invoices)
        start_when_ready(client, job)
        wait_for(client, job, "tasksSucceeded", 2)
        mark = len(platform.lines)
        kill(platform, "extract")
        platform.wait_for_line(r"extract exited with code -9", after=mark)
        assert wait_end(client, job, timeout=90) == "COMPLETED"
        done = outcome(client, job)
    assert (done.files, done.results) == (invoices.total, invoices.total)
    assert done.exact, done
    assert done.max_attempts <= MAX_DELIVER


def test_sigterm_of_the_extract_worker_mid_job_drains(platform: Platform) -> None:
    invoices = Invoices(loose=8)
    with httpx.Client(base_url=platform.url, headers=AUTH, timeout=30) as client:
        job = submit(client, invoices)
        start_when_ready(client, job)
        wait_for(client, job, "tasksSucceeded", 2)
        mark = len(platform.lines)
        stopped_at = time.monotonic()
        kill(platform, "extract", signal.SIGTERM)
        # A drain is a clean exit, well inside the grace period; `up` then starts it again.
        platform.wait_for_line(r"extract exited with code 0 ", after=mark, timeout=30)
        assert time.monotonic() - stopped_at < 25
        assert wait_end(client, job, timeout=90) == "COMPLETED"
        done = outcome(client, job)
    assert (done.files, done.results) == (invoices.total, invoices.total)
    assert done.exact, done
    # What it held was finished or handed back, never left to time out and fail.
    assert done.max_attempts <= 2


def test_kill_9_of_the_launcher_mid_job_takes_every_child_with_it(
    tmp_path: Path, gemini: RunningStandIn
) -> None:
    with (
        launched(tmp_path / "data", chaos_env(gemini)) as platform,
        httpx.Client(base_url=platform.url, headers=AUTH, timeout=30) as client,
    ):
        submit(client, Invoices(loose=8))  # the launcher dies while they are analysed
        children = platform.children()
        assert {"nats", "jobs", "ingest-1", "extract-1", "gateway"} <= set(children)
        platform.process.kill()
        platform.process.wait()
        deadline = time.monotonic() + 10
        while pids_with_env(platform.marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert platform.children() == {}, "children outlived their launcher"
