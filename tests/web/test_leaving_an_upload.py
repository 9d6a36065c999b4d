"""Leaving New job while files upload: the browser asks before the tab is closed or reloaded,
and a move within the app cancels the upload as "Cancel upload" does (the job was left on the
dashboard "Waiting for uploads" for ever). The pickers are off while files upload (what was
picked then was silently ignored)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import FilePayload, Page, Route, expect

from bytereview.core.settings import DEV_TOKEN
from tests.pdfs import text_pdf

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}

# Whether leaving the page now would be stopped by a prompt (what beforeunload handlers say).
LEAVING_ASKS = """() => {
  const event = new Event("beforeunload", { cancelable: true });
  window.dispatchEvent(event);
  return event.defaultPrevented;
}"""


def test_leaving_mid_upload_asks_and_cancels(page: Page, app_url: str) -> None:
    held: list[Route] = []
    # The file's upload (a PUT to its signed URL) never answers while the test runs.
    page.route(
        "**/*",
        lambda route: held.append(route) if route.request.method == "PUT" else route.continue_(),
    )
    page.goto(f"{app_url}/app/jobs/new")
    expect(page.get_by_role("heading", name="New job")).to_be_visible()
    assert page.evaluate(LEAVING_ASKS) is False
    one: FilePayload = {
        "name": "a.pdf",
        "mimeType": "application/pdf",
        "buffer": text_pdf(["Total: 1.00"]),
    }
    page.get_by_label("Choose files").set_input_files([one])
    with page.expect_response(re.compile(r"/v1/jobs$")) as created:
        page.get_by_role("button", name="Upload and analyse").click()
    job = created.value.json()["job"]["name"]
    expect(page.get_by_text("Uploading…")).to_be_visible()
    expect(page.get_by_label("Choose files")).to_be_disabled()
    expect(page.get_by_label("Choose a folder")).to_be_disabled()
    assert page.evaluate(LEAVING_ASKS) is True

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="Jobs", level=1)).to_be_visible()
    assert page.evaluate(LEAVING_ASKS) is False
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        for _ in range(100):
            if api.get(f"/v1/{job}").status_code == 404:
                break
            page.wait_for_timeout(100)
        assert api.get(f"/v1/{job}").status_code == 404
