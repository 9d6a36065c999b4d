"""Small things a user met: the header's labels wrapped inside ("New / job", "Sign / out") on a
phone, and the job page counted a ZIP among its files (55 where the analysis said 54 ready)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.test_trust import finished_job

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}

# The line boxes of a control's text: one when the label is not wrapped.
LINES = "e => { const r = document.createRange(); r.selectNodeContents(e); return r.getClientRects().length; }"


def lines(control: Locator) -> int:
    count: int = control.evaluate(LINES)
    return count


def test_header_labels_do_not_wrap_on_a_phone(page: Page, app_url: str) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{app_url}/app/jobs")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="New job")).to_be_visible()
    for name in ("Jobs", "New job", "Templates", "API keys"):
        assert lines(nav.get_by_role("link", name=name)) == 1, name
    assert lines(page.get_by_role("button", name="Sign out")) == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_job_page_counts_files_as_the_analysis_does(page: Page, app_url: str) -> None:
    """a.pdf and more.zip holding b.pdf: 2 files ready; the job holds 3 files, the ZIP too."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Counted files")
        assert api.get(f"/v1/{job}").json()["counters"]["filesTotal"] == 3
    page.goto(f"{app_url}/app/{job}/analysis")
    expect(page.get_by_text("2 files ready", exact=True)).to_be_visible()
    page.goto(f"{app_url}/app/{job}/results")
    summary = page.locator(".summary")
    expect(summary).to_contain_text("· 2 files ready ·")
    expect(summary).not_to_contain_text("3 files")
