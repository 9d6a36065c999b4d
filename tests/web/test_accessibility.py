"""Every main page, checked by axe-core in Chromium: no serious or critical violations.

With BYTEREVIEW_SCREENSHOTS=<folder> the run also saves a screenshot of each page (the README's).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.jobs import ready_job, wait_for

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}


def check(page: Page, name: str) -> None:
    results: Any = Axe().run(page)
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in {"serious", "critical"}
    ]
    assert not serious, f"{name}: {serious}"
    folder = os.environ.get("BYTEREVIEW_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_every_page_passes_axe(page: Page, app_url: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        configure = ready_job(api, "Accessibility: configure")
        results = ready_job(api, "March invoices")
        fields = [
            {"name": "invoice_number", "dataType": "text", "instruction": "The invoice number"},
            {"name": "total", "dataType": "currency"},
            # Printed nowhere: its empty values need review, so the review walk has items.
            {"name": "vendor", "dataType": "text"},
        ]
        api.post(f"/v1/{results}:configure", json={"fields": fields})
        api.post(f"/v1/{results}:start", json={})
        wait_for(api, results, {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED"})

    page.goto(app_url)
    expect(page.get_by_role("link", name="March invoices")).to_be_visible()
    check(page, "dashboard")
    page.goto(f"{app_url}/app/jobs/new")
    expect(page.get_by_role("heading", name="New job")).to_be_visible()
    check(page, "new-job")
    page.goto(f"{app_url}/app/{configure}/analysis")
    expect(page.get_by_role("link", name="Continue to configure")).to_be_visible()
    check(page, "analysis")
    page.goto(f"{app_url}/app/{configure}/configure")
    expect(page.get_by_text("will run")).to_be_visible()
    page.get_by_label("Results for invoices/more.zip/march").select_option(
        label="One result per folder"
    )
    expect(page.get_by_text("2 tasks will run")).to_be_visible()
    check(page, "configure")
    page.goto(f"{app_url}/app/{results}")
    expect(page.get_by_role("button", name="Edit invoice_number of invoices/a.pdf")).to_be_visible()
    # With the source document open beside the values.
    page.get_by_role("button", name="Show the source of invoices/a.pdf").click()
    expect(page.get_by_role("img", name="Page 1 of invoices/a.pdf")).to_be_visible()
    # And the review walk and a result's history open too; a value's evidence outlined.
    page.get_by_role("button", name="Review values").click()
    expect(page.get_by_role("region", name="Review").get_by_text("Value 1 of 2")).to_be_visible()
    page.get_by_role("button", name="History of invoices/a.pdf").click()
    expect(page.get_by_role("region", name="History of invoices/a.pdf")).to_contain_text(
        "Version 1"
    )
    page.get_by_role("button", name=re.compile(r"^Evidence for total of invoices\/a\.pdf:")).click()
    expect(page.get_by_role("img", name="Where total is printed")).to_be_visible()
    check(page, "job")
    page.goto(f"{app_url}/app/templates/new")
    expect(page.get_by_role("heading", name="New template")).to_be_visible()
    check(page, "template")
    page.goto(f"{app_url}/app/apiKeys")
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    check(page, "api-keys")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to ByteReview")).to_be_visible()
    check(page, "sign-in")
