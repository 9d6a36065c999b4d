"""Evidence end to end under `bytereview up`: the extract worker verifies what the offline
extractor cites, the jobs service keeps it, and `bytereview results review` works the queue."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bytereview.core import DEV_TOKEN
from tests.e2e.conftest import Platform
from tests.e2e.test_cli import cli
from tests.pdfs import text_pdf

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


def test_evidence_reaches_the_result_and_the_review_cli_works_the_queue(
    platform: Platform, tmp_path: Path
) -> None:
    url = platform.url
    (tmp_path / "one.pdf").write_bytes(text_pdf(["Invoice Number: A-1", "Total: 10.00"]))
    done = cli(
        url,
        "extract",
        str(tmp_path / "one.pdf"),
        "--field",
        "invoice_number:text:the invoice number",
        "--field",
        "total:currency",
        "--out",
        str(tmp_path / "r.csv"),
    )
    assert done.returncode == 0, done.stderr
    job = done.stderr.split("job ", 1)[1].split()[0]
    [result] = httpx.get(f"{url}/v1/{job}/results", headers=AUTH).json()["results"]
    total = result["assessments"]["total"]
    assert total["verified"] is True
    assert total["evidence"]["quote"] == "Total: 10.00"
    assert total["evidence"]["page"] == 1
    assert total["evidence"]["file"] in result["files"]
    assert 0 < total["evidence"]["box"]["left"] < total["evidence"]["box"]["right"] <= 1
    assert 0 < total["confidence"] <= 1

    # Everything under a confidence of 1 is listed: both values, money first.
    listed = cli(url, "results", "review", job, "--below", "1")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip().endswith("2 values need review")
    names = [line for line in listed.stdout.splitlines() if line.startswith("jobs/")]
    assert names[0].endswith("/values/total")
    accepted = cli(url, "results", "review", job, "--accept", names[0])
    assert accepted.returncode == 0, accepted.stderr
    corrected = cli(url, "results", "review", job, "--correct", names[1], "A-1b")
    assert corrected.returncode == 0, corrected.stderr
    after = cli(url, "results", "review", "--below", "1")
    assert job not in after.stdout
    [result] = httpx.get(f"{url}/v1/{job}/results", headers=AUTH).json()["results"]
    assert result["values"]["invoice_number"] == "A-1b"
    assert all(a["reviewed"] for a in result["assessments"].values())
    refused = cli(url, "results", "review", job, "--correct", "not-a-name", "x")
    assert refused.returncode == 1
    assert "not a review item name" in refused.stderr
    assert (
        json.loads(cli(url, "jobs", "show", job).stdout)["counters"].get("valuesNeedingReview", 0)
        == 0
    )
