"""How the app words what the API says: messages as the API wrote them (a field path was
capitalised into "Values.total", "Api_key.display_name"), inputs that stop at the API's
limits and say them, and an address with a malformed id is no page ("Name must look like…")."""

from __future__ import annotations

import json

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.jobs import ready_job
from tests.web.test_trust import A, finished_job

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}


def test_a_message_about_a_field_path_is_shown_as_written(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Wording")
    message = "values.total (Currency field): no amount in 'abc'"

    def refuse(route: Route) -> None:
        body = {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
        route.fulfill(status=400, content_type="application/json", body=json.dumps(body))

    page.route(
        "**/v1/jobs/*/results/*?*",
        lambda r: refuse(r) if r.request.method == "PATCH" else r.continue_(),
    )
    page.goto(f"{app_url}/app/{job}/results")
    page.get_by_role("button", name=f"Edit total of {A}").click()
    page.get_by_label(f"New total of {A}").fill("abc")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text(message)


def test_inputs_stop_at_the_api_limits(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/app/apiKeys")
    expect(page.get_by_label("Key name")).to_have_attribute("maxlength", "200")
    page.goto(f"{app_url}/app/jobs/new")
    expect(page.get_by_label("Job name")).to_have_attribute("maxlength", "200")
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = ready_job(api, "Limits")
    page.goto(f"{app_url}/app/{job}/configure")
    expect(page.get_by_label("Name of field 1")).to_have_attribute("maxlength", "64")
    expect(page.get_by_label("New template name")).to_have_attribute("maxlength", "200")
    expect(page.get_by_text("up to 64 characters")).to_be_visible()


@pytest.mark.parametrize("path", ["/app/templates/zzz", "/app/jobs/xyz/configure", "/app/jobs/xyz"])
def test_a_malformed_id_is_no_page(page: Page, app_url: str, path: str) -> None:
    page.goto(f"{app_url}{path}")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_text("must look like")).to_have_count(0)
