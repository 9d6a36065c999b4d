"""Keyboard focus: after a correction is saved or dropped it is on the value's button again
(it went to <body>, so the next value was a Tab through the whole page away), and after a
move to another page it is on that page's heading."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.test_trust import A, finished_job

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}


def test_focus_returns_to_the_value_after_save_and_escape(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Keyboard corrections")
    page.goto(f"{app_url}/app/{job}/results")
    value = page.get_by_role("button", name=f"Edit invoice_number of {A}")
    value.focus()
    page.keyboard.press("Enter")
    field = page.get_by_label(f"New invoice_number of {A}")
    expect(field).to_be_focused()
    field.fill("A-100")
    page.keyboard.press("Enter")
    expect(value).to_have_text("A-100")
    expect(value).to_be_focused()

    page.keyboard.press("Enter")
    expect(field).to_be_focused()
    page.keyboard.press("Escape")
    expect(field).to_have_count(0)
    expect(value).to_be_focused()


def test_a_new_page_takes_the_focus_to_its_heading(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/app/jobs")
    expect(page.get_by_role("heading", name="Jobs", level=1)).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New job").click()
    expect(page.get_by_role("heading", name="New job", level=1)).to_be_focused()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
    expect(page.get_by_role("heading", name="Templates", level=1)).to_be_focused()
