"""Cancel job asks first, as Delete does: a cancelled job cannot be resumed."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.test_flow import paused_job

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}


def test_cancel_job_is_confirmed_first(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = paused_job(api, "Cancel asked first")
        page.goto(f"{app_url}/app/{job}")
        expect(page.get_by_text("Paused", exact=True)).to_be_visible()
        page.get_by_role("button", name="Cancel job").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("cannot be resumed")
        dialog.get_by_role("button", name="Keep running").click()
        expect(dialog).to_have_count(0)
        assert api.get(f"/v1/{job}").json()["status"] == "PAUSED"
        expect(page.get_by_role("button", name="Resume")).to_be_visible()

        page.get_by_role("button", name="Cancel job").click()
        page.get_by_role("dialog").get_by_role("button", name="Cancel job").click()
        expect(page.get_by_text("Cancelled", exact=True)).to_be_visible()
        assert api.get(f"/v1/{job}").json()["status"] == "CANCELLED"
