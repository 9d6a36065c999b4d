"""Result history, revert, golden documents and template scores (#16) over REST and the CLI,
against the platform `bytereview up` runs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bytereview.core import DEV_TOKEN
from tests.e2e.conftest import Platform, wait_status
from tests.e2e.test_cli import cli, invoice

pytestmark = pytest.mark.e2e


def test_history_revert_golden_and_score(platform: Platform, tmp_path: Path) -> None:
    url = platform.url
    created = cli(
        url,
        "templates",
        "create",
        "Scored",
        "--field",
        "invoice_number:text",
        "--field",
        "total:currency",
    )
    assert created.returncode == 0, created.stderr
    template = json.loads(created.stdout)["name"]
    (tmp_path / "one.pdf").write_bytes(invoice("A-1", "10.00"))
    done = cli(
        url,
        "extract",
        str(tmp_path / "one.pdf"),
        "--template",
        "Scored",
        "--out",
        str(tmp_path / "o.json"),
    )
    assert done.returncode == 0, done.stderr
    job = done.stderr.split("job ", 1)[1].split()[0]

    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {DEV_TOKEN}"}) as rest:
        got = rest.get(f"/v1/{job}").json()
        assert got["templateVersion"] == f"{template}/versions/1"
        (result,) = rest.get(f"/v1/{job}/results").json()["results"]
        assert result["version"] == 1
        # A correction over REST, with its reason (a query parameter beside the body).
        patched = rest.patch(
            f"/v1/{result['name']}",
            params={"updateMask": "values", "reason": "scan misread"},
            json={"values": {"invoice_number": "A-7", "total": "10.00"}},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["version"] == 2
        assert patched.json()["correctedFields"] == ["invoice_number"]

        history = cli(url, "results", "history", result["name"])
        assert history.returncode == 0, history.stderr
        assert "v2" in history.stdout
        assert "CORRECTED" in history.stdout
        assert 'invoice_number: "A-1" -> "A-7"' in history.stdout
        assert "reason: scan misread" in history.stdout

        # Read at v1, before the correction: the revert would undo what it never saw.
        stale = cli(url, "results", "revert", result["name"], "1", "--etag", "1")
        assert stale.returncode == 1
        assert "changed since it was read" in stale.stderr
        reverted = cli(
            url, "results", "revert", result["name"], "1", "--reason", "was right", "--etag", "2"
        )
        assert reverted.returncode == 0, reverted.stderr
        assert "is at v3" in reverted.stdout
        (after,) = rest.get(f"/v1/{job}/results").json()["results"]
        assert after["values"]["invoice_number"] == "A-1"

        golden = cli(url, "results", "golden", result["name"], "--template", template)
        assert golden.returncode == 0, golden.stderr
        assert "one.pdf" in golden.stdout
        scored = cli(url, "templates", "score", template, "--wait")
        assert scored.returncode == 0, scored.stderr
        assert "accuracy 100.0% (2/2 values, 1 golden documents)" in scored.stdout
        versions = cli(url, "templates", "versions", template)
        assert "v1" in versions.stdout
        assert "accuracy 100.0%" in versions.stdout

        # Re-run from the CLI, by the file's path: unchanged, so skipped; forced, extracted.
        skipped = cli(url, "jobs", "rerun", job, "--file", "one.pdf")
        assert skipped.returncode == 0, skipped.stderr
        assert "0 task(s) queued again, 1 unchanged skipped" in skipped.stdout
        again = cli(url, "jobs", "rerun", job, "--file", "one.pdf", "--force", "--wait")
        assert again.returncode == 0, again.stderr
        assert f"{job} is COMPLETED" in again.stdout
        assert cli(url, "jobs", "rerun", job, "--file", "nope.pdf").returncode == 1

        # Re-run over REST: unchanged inputs are skipped; bad requests are 4xx.
        rerun = rest.post(f"/v1/{job}:rerun", json={"files": result["files"]})
        assert rerun.status_code == 200, rerun.text
        assert rerun.json()["skippedTasks"] == [result["task"]]
        forced = rest.post(f"/v1/{job}:rerun", json={"files": result["files"], "force": True})
        assert forced.json()["queuedTasks"] == [result["task"]]
        assert wait_status(rest, job, {"COMPLETED"}) == "COMPLETED"
        assert rest.post(f"/v1/{job}:rerun", json={}).status_code == 400
        # Nothing failed: a state conflict (409), not a malformed request.
        assert rest.post(f"/v1/{job}:rerun", json={"failedTasks": True}).status_code == 409
        versions_page = rest.get(f"/v1/{result['name']}/versions").json()["versions"]
        kinds = [v["kind"] for v in versions_page]
        assert kinds == ["EXTRACTED", "CORRECTED", "REVERTED", "RERUN", "RERUN"]
        # A version that does not exist.
        assert rest.get(f"/v1/{template}/versions/9").status_code == 404
