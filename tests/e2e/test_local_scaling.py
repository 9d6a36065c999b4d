"""Local mode: under `bytereview up` the autoscaler policy adds extract workers for a burst
and retires them when the queue is idle. Gemini is the stand-in, answering slowly."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from bytereview.core import DEV_TOKEN
from tests.e2e.conftest import launched, wait_status
from tests.gemini_standin import API_KEY, GeminiStandIn, Reply, RunningStandIn
from tests.pdfs import text_pdf

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}
FILES = 24


def slow_answer(seen: object) -> Reply:
    time.sleep(0.5)  # a model call; each request runs on its own server thread
    return Reply(values={"total": 1.0})


def test_a_burst_adds_workers_that_retire_when_idle(tmp_path: Path) -> None:
    with RunningStandIn(GeminiStandIn(default=slow_answer)) as gemini:
        env = {
            "BYTEREVIEW_GEMINI_API_KEY": API_KEY,
            "BYTEREVIEW_GEMINI_BASE_URL": gemini.base_url,
            "BYTEREVIEW_EXTRACT_CONCURRENCY": "2",
            "BYTEREVIEW_LOCAL_MAX_WORKERS": "3",
            "BYTEREVIEW_LOCAL_SCALE_DOWN_SECONDS": "3",
        }
        with (
            launched(tmp_path / "data", env) as platform,
            httpx.Client(base_url=platform.url, headers=AUTH, timeout=30) as client,
        ):
            # A text layer long enough to be read as text: a thinner one is OCRed as a scan to
            # verify the model's quotes, seconds per page, which would time OCR, not scaling.
            pdf = text_pdf(["Invoice 2026-001 for services", "Total: 1.00"])
            files = [{"path": f"burst/{i}.pdf", "sizeBytes": len(pdf)} for i in range(FILES)]
            created = client.post("/v1/jobs", json={"files": files}).json()
            job = created["job"]["name"]
            for target in created["uploadTargets"]:
                assert httpx.put(target["url"], content=pdf, timeout=30).status_code == 200
            client.post(f"/v1/{job}:finalizeUploads", json={})
            wait_status(client, job, {"READY"})
            client.post(
                f"/v1/{job}:configure", json={"fields": [{"name": "total", "dataType": "currency"}]}
            )
            mark = len(platform.lines)
            assert client.post(f"/v1/{job}:start", json={}).status_code == 200
            up = platform.wait_for_line(r"extract: 1 -> (\d) workers \(scale up", after=mark)
            assert int(up.group(1)) > 1
            # The extras are real processes of this platform, named for their heartbeats.
            deadline = time.monotonic() + 10
            while "extract-2" not in platform.children() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "extract-2" in platform.children()
            assert (
                wait_status(client, job, {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED"})
                == "COMPLETED"
            )
            # Every task ran exactly once, whichever worker took it.
            tasks = client.get(f"/v1/{job}/tasks", params={"pageSize": 100}).json()["tasks"]
            assert [t["attempts"] for t in tasks] == [1] * FILES
            assert len(gemini.state.seen) == FILES
            platform.wait_for_line(r"extract: \d -> 1 workers \(scale down", after=mark)
            deadline = time.monotonic() + 30
            while "extract-2" in platform.children() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "extract-2" not in platform.children(), "a retired worker is still running"
