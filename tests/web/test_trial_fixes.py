"""What a user met trying the web app: a job created after its upload was cancelled, a results
table that stopped turning pages once a value had been opened, an impossible date answered as
an internal error, and an API key named with spaces announced as "undefined"."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import FilePayload, Page, Route, expect

from bytereview.core.settings import DEV_TOKEN
from tests.pdfs import text_pdf
from tests.web.jobs import ready_zip_job, wait_for
from tests.web.test_trust import A, finished_job

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}


def test_an_upload_cancelled_while_its_job_is_created_keeps_no_job(
    page: Page, app_url: str
) -> None:
    """The page said "Upload cancelled; nothing was kept", then the job's late creation set it
    to "Uploading…" for ever (no upload, Cancel disabled) and the job stayed waiting."""
    held: list[Route] = []

    def hold(route: Route) -> None:
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.route(re.compile(r"/v1/jobs$"), hold)
    page.goto(f"{app_url}/app/jobs/new")
    page.get_by_label("Job name").fill("Cancelled while created")
    one: FilePayload = {
        "name": "a.pdf",
        "mimeType": "application/pdf",
        "buffer": text_pdf(["Total: 1.00"]),
    }
    page.get_by_label("Choose files").set_input_files([one])
    page.get_by_role("button", name="Upload and analyse").click()
    expect(page.get_by_text("Creating the job…")).to_be_visible()
    page.get_by_role("button", name="Cancel upload").click()
    expect(page.get_by_text("Upload cancelled; nothing was kept.")).to_be_visible()
    assert len(held) == 1
    created = held[0].fetch()
    job = created.json()["job"]["name"]
    held[0].fulfill(response=created)

    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        for _ in range(50):
            if api.get(f"/v1/{job}").status_code == 404:
                break
            page.wait_for_timeout(100)
        assert api.get(f"/v1/{job}").status_code == 404
    expect(page.get_by_text("Upload cancelled; nothing was kept.")).to_be_visible()
    expect(page.get_by_text("Uploading…")).to_have_count(0)
    expect(page.get_by_role("button", name="Upload and analyse")).to_be_enabled()


def test_pages_turn_after_a_value_was_opened_and_the_table_sorted(page: Page, app_url: str) -> None:
    """A sort clicked while a value was open dropped the input but kept the page "editing":
    Next then did nothing (yet remembered the page, so Previous led to the second page), and
    a running job's table stopped following its results."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = ready_zip_job(api, "Sorted while open", 51)  # two pages of results (50 a page)
        fields = {"fields": [{"name": "total", "dataType": "currency"}]}
        assert api.post(f"/v1/{job}:configure", json=fields).status_code == 200
        assert api.post(f"/v1/{job}:start", json={}).status_code == 200
        wait_for(api, job, {"COMPLETED"})
    page.goto(f"{app_url}/app/{job}/results")
    table = page.get_by_role("table", name="Extracted values")
    expect(table.locator("tbody tr")).to_have_count(50)
    page.get_by_role("button", name=re.compile("^Edit total of ")).first.click()
    page.get_by_role("button", name="total", exact=True).click()
    page.get_by_role("button", name="Next results").click()
    expect(table.locator("tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Previous results").click()
    expect(table.locator("tbody tr")).to_have_count(50)
    expect(page.get_by_role("button", name="Previous results")).to_be_disabled()

    # Next with a value open turns the page too (it did nothing, yet counted the turn).
    page.get_by_role("button", name=re.compile("^Edit total of ")).first.click()
    page.get_by_role("button", name="Next results").click()
    expect(table.locator("tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Previous results").click()
    expect(table.locator("tbody tr")).to_have_count(50)


def test_an_impossible_date_is_refused_in_words(page: Page, app_url: str) -> None:
    """`2018-13-01` reached `date.fromisoformat` unguarded: "Internal error; see the server
    logs" instead of what is wrong with the value."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Impossible date")
    page.goto(f"{app_url}/app/{job}/results")
    page.get_by_role("button", name=f"Edit due_date of {A}").click()
    page.get_by_label(f"New due_date of {A}").fill("2018-13-01")
    page.get_by_role("button", name="Save", exact=True).click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("'2018-13-01' is not a date on the calendar")
    expect(alert).not_to_contain_text("Internal error")
    page.get_by_label(f"New due_date of {A}").fill("2018-12-01")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("button", name=f"Edit due_date of {A}")).to_have_text("2018-12-01")


def test_an_api_key_needs_a_name_not_spaces(page: Page, app_url: str) -> None:
    """Spaces passed the input's `required`: an unnamed key was made and announced as
    `Your new key "undefined"`."""
    page.goto(f"{app_url}/app/apiKeys")
    page.get_by_label("Key name").fill("   ")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert")).to_have_text("Give the key a name first.")
    expect(page.get_by_label("New API key")).to_have_count(0)
    expect(page.get_by_text("undefined")).to_have_count(0)
