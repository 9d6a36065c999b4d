"""The source viewer's values beside the page image follow a correction of the result it
shows (they kept the values it was opened with while the table showed the new ones)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.test_trust import A, finished_job

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}


def test_the_viewer_shows_a_corrected_value(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Viewer after a correction")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{app_url}/app/{job}/results")
    page.get_by_role("button", name=f"Show the source of {A}").click()
    values = page.get_by_label(f"Values of {A}")
    expect(values).to_contain_text("12.00")

    page.get_by_role("button", name=f"Edit total of {A}").click()
    page.get_by_label(f"New total of {A}").fill("13.25")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("button", name=f"Edit total of {A}")).to_have_text("13.25")
    expect(values).to_contain_text("13.25")
    expect(values).not_to_contain_text("12.00")
