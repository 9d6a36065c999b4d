"""Save as template: what it did is said by its button (it was said below Start extraction,
off the screen), and the new template is the one chosen in the Template list."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.jobs import ready_job

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}


def test_saved_template_is_said_by_its_button_and_chosen(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = ready_job(api, "Save as template")
    page.goto(f"{app_url}/app/{job}/configure")
    page.get_by_label("Name of field 1").fill("invoice_number")
    page.get_by_label("New template name").fill("Kept by its button")
    page.get_by_role("button", name="Save as template").click()
    templates = page.get_by_role("region", name="Templates")
    expect(
        templates.get_by_text('Saved the fields as template "Kept by its button".')
    ).to_be_visible()
    expect(
        templates.get_by_text('Saved the fields as template "Kept by its button".')
    ).to_be_in_viewport()
    chosen = page.get_by_label("Template", exact=True)
    expect(chosen.locator("option:checked")).to_have_text("Kept by its button")
