"""The templates and API keys pages, driven as a user drives them."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.jobs import ready_job

pytestmark = pytest.mark.e2e


def test_templates_create_edit_delete(page: Page, app_url: str) -> None:
    page.goto(app_url)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
    page.get_by_role("link", name="New template").click()
    page.get_by_label("Template name").fill("Invoices <b>bold</b>")
    page.get_by_label("Name of field 1").fill("invoice_number")
    page.get_by_role("button", name="Add field").click()
    page.get_by_label("Name of field 2").fill("invoice_number")
    page.get_by_role("button", name="Save template").click()
    # The API refuses a name used twice; the message sits next to the second field.
    expect(page.locator("#field-2-name-error")).to_contain_text("used twice")
    page.get_by_label("Name of field 2").fill("total")
    page.get_by_label("Data type of field 2").select_option("currency")
    page.get_by_role("button", name="Move field 2 up").click()
    expect(page.get_by_label("Name of field 1")).to_have_value("total")
    page.get_by_role("button", name="Save template").click()

    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Invoices <b>bold</b>"))
    expect(row).to_contain_text("total, invoice_number")
    page.get_by_role("link", name="Invoices <b>bold</b>").click()
    page.get_by_label("Template name").fill("Invoices")
    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_role("link", name="Invoices", exact=True)).to_be_visible()

    page.get_by_role("button", name="Delete Invoices").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("link", name="Invoices", exact=True)).to_have_count(0)


def test_api_keys_show_the_secret_once_and_revoke(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/app/apiKeys")
    page.get_by_label("Key name").fill("nightly script")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("New API key").text_content() or ""
    assert len(secret) > 20
    # The key works on the API until it is revoked.
    assert httpx.get(f"{app_url}/v1/jobs", headers={"X-API-Key": secret}).status_code == 200
    page.get_by_role("button", name="Revoke nightly script").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("button", name="Revoke nightly script")).to_have_count(0)
    assert httpx.get(f"{app_url}/v1/jobs", headers={"X-API-Key": secret}).status_code == 401


def test_configure_saves_and_loads_a_template(page: Page, app_url: str) -> None:
    headers = {"Authorization": f"Bearer {DEV_TOKEN}"}
    with httpx.Client(base_url=app_url, headers=headers, timeout=30) as api:
        job = ready_job(api, "Template round trip")
    page.goto(f"{app_url}/app/{job}/configure")
    page.get_by_label("Name of field 1").fill("invoice_number")
    page.get_by_role("button", name="Add field").click()
    page.get_by_label("Name of field 2").fill("total")
    page.get_by_label("Data type of field 2").select_option("currency")
    page.get_by_label("New template name").fill("Round trip")
    page.get_by_role("button", name="Save as template").click()
    expect(page.get_by_text('Saved the fields as template "Round trip".')).to_be_visible()
    page.get_by_role("button", name="Remove field 2").click()
    page.get_by_label("Name of field 1").fill("something_else")
    page.get_by_label("Template", exact=True).select_option(label="Round trip")
    page.get_by_role("button", name="Load template").click()
    expect(page.get_by_label("Name of field 1")).to_have_value("invoice_number")
    expect(page.get_by_label("Name of field 2")).to_have_value("total")
    expect(page.get_by_label("Data type of field 2")).to_have_value("currency")


def test_the_dashboard_pages_through_jobs(page: Page, app_url: str) -> None:
    headers = {"Authorization": f"Bearer {DEV_TOKEN}"}
    with httpx.Client(base_url=app_url, headers=headers, timeout=30) as api:
        for i in range(25):
            declared = {
                "displayName": f"Paging {i:02d}",
                "files": [{"path": "p.pdf", "sizeBytes": 1}],
            }
            assert api.post("/v1/jobs", json=declared).status_code == 200
    page.goto(f"{app_url}/app/jobs?status=PENDING_UPLOAD")
    expect(page.get_by_label("Status")).to_have_value("PENDING_UPLOAD")
    jobs = page.get_by_role("table", name="Your jobs")
    expect(jobs.get_by_role("row")).to_have_count(21)  # a header and 20 jobs
    expect(page.get_by_text(re.compile(r"^1\u201320 of \d+$"))).to_be_visible()
    expect(page.get_by_role("button", name="Previous page")).to_be_disabled()
    page.get_by_role("button", name="Next page").click()
    expect(page.get_by_text(re.compile(r"^21\u2013\d+ of \d+$"))).to_be_visible()
    expect(jobs.get_by_role("link", name="Paging 00")).to_be_visible()  # newest first
    page.get_by_role("button", name="Previous page").click()
    expect(jobs.get_by_role("link", name="Paging 24")).to_be_visible()


def test_the_dashboard_shows_the_latest_filter_whatever_answers_last(
    page: Page, app_url: str
) -> None:
    """Two filters chosen in a row: the first one's answer, delayed here, used to replace the
    second's (the list said no job was failed under "Partially completed")."""
    headers = {"Authorization": f"Bearer {DEV_TOKEN}"}
    with httpx.Client(base_url=app_url, headers=headers, timeout=30) as api:
        declared = {"displayName": "Latest filter", "files": [{"path": "p.pdf", "sizeBytes": 1}]}
        assert api.post("/v1/jobs", json=declared).status_code == 200
    page.goto(f"{app_url}/app/jobs")
    jobs = page.get_by_role("table", name="Your jobs")
    expect(jobs.get_by_role("link", name="Latest filter").first).to_be_visible()

    def late(route: Route) -> None:
        page.wait_for_timeout(1500)  # answered after the request that follows it
        route.continue_()

    page.route(re.compile(r"/v1/jobs\?.*FAILED"), late)
    page.get_by_label("Status").select_option("FAILED")
    page.get_by_label("Status").select_option("PENDING_UPLOAD")
    expect(jobs.get_by_role("link", name="Latest filter").first).to_be_visible()
    page.wait_for_timeout(2500)  # the failed list's answer has come and gone
    expect(page.get_by_label("Status")).to_have_value("PENDING_UPLOAD")
    expect(jobs.get_by_role("link", name="Latest filter").first).to_be_visible()
