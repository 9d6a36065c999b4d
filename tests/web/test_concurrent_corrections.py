"""Two reviewers on one result: the second's correction, made on a page read before the
first's, is refused (the result's etag) and the page shows the result as it is now. It
overwrote the first's unseen (the web trial, two tabs)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.test_trust import A, finished_job

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}


def test_a_correction_on_a_stale_page_overwrites_nothing(
    page: Page, context: BrowserContext, app_url: str
) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Two reviewers")
        other = context.new_page()
        try:
            for tab in (page, other):
                tab.goto(f"{app_url}/app/{job}/results")
                expect(tab.get_by_role("button", name=f"Edit total of {A}")).to_have_text("12.00")

            other.get_by_role("button", name=f"Edit total of {A}").click()
            other.get_by_label(f"New total of {A}").fill("13.25")
            other.get_by_role("button", name="Save", exact=True).click()
            expect(other.get_by_role("button", name=f"Edit total of {A}")).to_have_text("13.25")
        finally:
            other.close()

        page.get_by_role("button", name=f"Edit total of {A}").click()
        page.get_by_label(f"New total of {A}").fill("99.00")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("changed by someone else")
        expect(page.get_by_role("button", name=f"Edit total of {A}")).to_have_text("13.25")
        expect(page.get_by_role("button", name=f"Edit total of {A}")).to_be_focused()

        results = api.get(f"/v1/{job}/results").json()["results"]
        [row] = [r for r in results if A in r["filePaths"]]
        assert (row["values"]["total"], row["version"]) == ("13.25", 2)
