"""Long names (files, jobs, fields, templates, API keys) never make a page wider than the
screen: buttons say "Remove", "Revoke", "Delete" with the name in their accessible name, and
headings, messages and cells wrap. Dates in the results table are not broken inside."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import FilePayload, Page, ViewportSize, expect

from bytereview.core.settings import DEV_TOKEN
from tests.pdfs import text_pdf
from tests.web.jobs import ready_job, set_values, wait_for

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
LONG = "quarterly_statement_" + "very_long_name_" * 14 + "end"  # 233 characters, no space


def page_width(page: Page) -> int:
    width: int = page.evaluate("document.documentElement.scrollWidth")
    return width


def test_new_job_with_a_long_file_name_fits_a_phone(page: Page, app_url: str) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"{app_url}/app/jobs/new")
    one: FilePayload = {
        "name": f"{LONG}.pdf",
        "mimeType": "application/pdf",
        "buffer": text_pdf(["x"]),
    }
    page.get_by_label("Choose files").set_input_files([one])
    remove = page.get_by_role("button", name=f"Remove {LONG}.pdf")
    expect(remove).to_have_text("Remove")
    assert page_width(page) <= PHONE["width"]


def test_a_long_file_and_job_name_fit_the_job_page(page: Page, app_url: str) -> None:
    body = text_pdf(["Invoice Number: L-1", "Total Due: $5.00"])
    path = f"{LONG}.pdf"
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        created = api.post(
            "/v1/jobs",
            json={
                "displayName": f"Job {LONG[:190]}",
                "files": [{"path": path, "sizeBytes": len(body)}],
            },
        ).json()
        assert httpx.put(created["uploadTargets"][0]["url"], content=body).status_code == 200
        job = created["job"]["name"]
        api.post(f"/v1/{job}:finalizeUploads", json={})
        wait_for(api, job, {"READY"})
        fields = [
            {"name": "total", "dataType": "currency"},
            {"name": "paid", "dataType": "date_ymd"},
        ]
        assert api.post(f"/v1/{job}:configure", json={"fields": fields}).status_code == 200
        api.post(f"/v1/{job}:start", json={})
        wait_for(api, job, {"COMPLETED"})
        set_values(api, job, {path: {"paid": "2018-01-06"}})
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        page.goto(f"{app_url}/app/{job}/results")
        page.get_by_role("button", name=f"Show the source of {path}").click()
        expect(page.get_by_role("heading", name=f"Source: {path}")).to_be_visible()
        assert page_width(page) <= size["width"], size
    # The date on one line: its text is one box, not "2018-" above "01-06".
    date = page.get_by_role("button", name=f"Edit paid of {path}")
    expect(date).to_have_text("2018-01-06")
    lines = date.evaluate(
        "b => { const r = document.createRange(); r.selectNodeContents(b); return r.getClientRects().length; }"
    )
    assert lines == 1


def test_a_long_field_name_in_an_error_fits_a_phone(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = ready_job(api, "Long field")
    page.set_viewport_size(PHONE)
    page.goto(f"{app_url}/app/{job}/configure")
    page.get_by_label("Name of field 1").fill("x-" * 32)  # refused: '-' is no letter or digit
    page.get_by_role("button", name="Save fields").click()
    expect(page.get_by_role("alert")).to_contain_text("Field 1 needs a fix")
    assert page_width(page) <= PHONE["width"]


def test_long_key_and_template_names_fit_a_phone(page: Page, app_url: str) -> None:
    name = "k" * 200
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        key = api.post("/v1/users/me/apiKeys", json={"displayName": name})
        assert key.status_code == 200, key.text
        made = api.post(
            "/v1/templates",
            json={"displayName": "t" * 200, "fields": [{"name": "total", "dataType": "currency"}]},
        )
        assert made.status_code == 200, made.text
    page.set_viewport_size(PHONE)
    page.goto(f"{app_url}/app/apiKeys")
    expect(page.get_by_role("button", name=f"Revoke {name}")).to_have_text("Revoke")
    assert page_width(page) <= PHONE["width"]
    page.goto(f"{app_url}/app/templates")
    expect(page.get_by_role("button", name=f"Delete {'t' * 200}")).to_have_text("Delete")
    assert page_width(page) <= PHONE["width"]
