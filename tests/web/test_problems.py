"""The job page says what could not be extracted and why: a file that could not be used and
a task that failed had no row in the results, and their reasons stood only in the collapsed
list of events (the web trial)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.pdfs import text_pdf
from tests.web.jobs import wait_for

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}
FILES = {
    "good.pdf": text_pdf(["Invoice Number: G-1", "Total Due: $5.00"]),
    # A JPEG by its first bytes, with no frame: READY at ingest, no decoder opens it.
    "scan.jpg": b"\xff\xd8\xff" + b"x" * 100,
    "notes.txt": b"remember the milk\n",
}


def test_failures_are_listed_with_their_reasons(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        created = api.post(
            "/v1/jobs",
            json={
                "displayName": "Some failed",
                "files": [{"path": p, "sizeBytes": len(b)} for p, b in FILES.items()],
            },
        ).json()
        for target in created["uploadTargets"]:
            assert httpx.put(target["url"], content=FILES[target["path"]]).status_code == 200
        job = created["job"]["name"]
        api.post(f"/v1/{job}:finalizeUploads", json={})
        wait_for(api, job, {"READY"})
        fields = {"fields": [{"name": "total", "dataType": "currency"}]}
        assert api.post(f"/v1/{job}:configure", json=fields).status_code == 200
        assert api.post(f"/v1/{job}:start", json={}).status_code == 200
        wait_for(api, job, {"PARTIALLY_COMPLETED"})
    page.goto(f"{app_url}/app/{job}/results")
    panel = page.get_by_text("What could not be extracted (2)")
    expect(panel).to_be_visible()
    panel.click()
    problems = page.locator(".problems-panel li")
    expect(problems).to_have_count(2)
    expect(problems.filter(has_text="notes.txt")).to_contain_text("not a type that can be read")
    expect(problems.filter(has_text="scan.jpg")).to_contain_text(
        "extraction failed (scan.jpg: cannot read the image (cannot identify image file))"
    )
    # An image no decoder opens fails the same way again: retrying it would not help.
    expect(problems.filter(has_text="scan.jpg")).to_contain_text("— will fail again as it is")
