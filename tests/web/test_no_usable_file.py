"""A job none of whose files can be read says so, and offers a new job or deleting this one,
not "Continue to configure" (a job takes no files after it is created)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.jobs import wait_for

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}


def test_a_job_of_unreadable_files_is_not_sent_to_configure(page: Page, app_url: str) -> None:
    body = b"just some notes\n"
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        created = api.post(
            "/v1/jobs",
            json={
                "displayName": "Only notes",
                "files": [{"path": "notes.txt", "sizeBytes": len(body)}],
            },
        ).json()
        assert httpx.put(created["uploadTargets"][0]["url"], content=body).status_code == 200
        job = created["job"]["name"]
        api.post(f"/v1/{job}:finalizeUploads", json={})
        wait_for(api, job, {"READY"})
        page.goto(f"{app_url}/app/{job}/analysis")
        expect(page.get_by_text("None of the files of this job can be read")).to_be_visible()
        expect(page.get_by_role("link", name="Continue to configure")).to_have_count(0)
        expect(page.get_by_role("link", name="Add files in a new job")).to_have_attribute(
            "href", "/app/jobs/new"
        )
        page.get_by_role("button", name="Delete job").click()
        page.get_by_role("dialog").get_by_role("button", name="Delete").click()
        expect(page.get_by_role("heading", name="Jobs", level=1)).to_be_visible()
        assert api.get(f"/v1/{job}").status_code == 404
