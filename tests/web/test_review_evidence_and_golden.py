"""Second web trial of review and trust: the walk's evidence for a value that cites no page,
golden results some of which already are, the history and the walk following a correction
made in the table, and a corrected value's evidence."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.jobs import finished_zip_job
from tests.web.test_trust import finished_job, golden_template, starts
from tests.web.walk import open_walk

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}
A = "invoices/a.pdf"
B = "invoices/more.zip/march/b.pdf"


def test_a_value_without_evidence_never_shows_another_files_page(page: Page, app_url: str) -> None:
    """The walk shows each value's evidence beside it. A value whose row is not on the
    table's page and that cites no page (an empty vendor) left the previous document, its
    box and its quote under the viewer's heading, as if they were this value's evidence."""
    fields = [{"name": "total", "dataType": "currency"}, {"name": "vendor", "dataType": "text"}]
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        # Two pages of results (50 a page): the second shows one row.
        job = finished_zip_job(api, "Walk beside another page", 51, fields)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{app_url}/app/{job}/results")
    page.get_by_role("button", name="Next results").click()
    shown = page.locator("table.results tbody th.path")
    expect(shown).to_have_count(1)
    path = shown.locator("input").get_attribute("aria-label")
    assert path
    path = path.removeprefix("Select ")
    # The shown row's total, with its evidence on its page.
    page.get_by_role("button", name=starts(f"Evidence for total of {path}:")).click()
    viewer = page.get_by_role("region", name=f"Source: {path}")
    expect(viewer.get_by_role("img", name="Where total is printed")).to_be_visible()

    page.get_by_role("button", name="Review values").click()
    walk = page.get_by_role("region", name="Review")
    expect(walk.get_by_text("Value 1 of")).to_be_visible()
    if walk.get_by_role("definition").nth(0).inner_text() == path:
        page.keyboard.press("j")  # a value of a result on the other page
    expect(walk.get_by_role("definition").nth(1)).to_have_text("vendor")
    walked = walk.get_by_role("definition").nth(0).inner_text()
    assert walked != path
    side = page.locator("section.viewer")
    expect(side.get_by_text("No page was cited for vendor")).to_be_visible()
    expect(side.get_by_role("heading", name="Source document")).to_be_visible()
    expect(side.get_by_role("img")).to_have_count(0)
    expect(side.get_by_text("total read from page")).to_have_count(0)


def test_marking_golden_goes_on_past_a_result_already_golden(page: Page, app_url: str) -> None:
    """Two results chosen, the first already golden for the template: the second was never
    marked, and the notice was the API's error naming the first by its resource name."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        template = golden_template(api, "Golden twice")
        job = finished_job(api, "Golden twice", template)
        results = {
            r["filePaths"][0]: r["name"] for r in api.get(f"/v1/{job}/results").json()["results"]
        }
        marked = api.post(f"/v1/{template}/goldenDocuments", json={"result": results[A]})
        assert marked.status_code == 200, marked.text

        page.goto(f"{app_url}/app/{job}/results")
        page.get_by_label(f"Select {A}").check()
        page.get_by_label(f"Select {B}").check()
        page.get_by_role("button", name="Mark selected golden").click()
        expect(
            page.get_by_text(
                'Marked 1 result(s) golden for the template "Golden twice". 1 already were.'
            )
        ).to_be_visible()
        golden = api.get(f"/v1/{template}/goldenDocuments").json()["goldenDocuments"]
        assert sorted(g["result"] for g in golden) == sorted([results[A], results[B]])


def test_the_history_open_follows_a_correction_and_names_who_made_it(
    page: Page, app_url: str
) -> None:
    """A result's history open beside the table kept listing the versions it was opened with
    after the table corrected that result (its row said v2, the panel called v1 current and
    offered no revert to it), and named the person who corrected it by user id."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "History follows")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{app_url}/app/{job}/results")
    page.get_by_role("button", name=f"History of {A}").click()
    drawer = page.get_by_role("region", name=f"History of {A}")
    expect(drawer.get_by_role("listitem").filter(has_text="Version 1")).to_contain_text("(current)")

    page.get_by_role("button", name=f"Edit total of {A}").click()
    page.get_by_label(f"New total of {A}").fill("13.25")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name=f"History of {A}")).to_have_text("History (v2)")
    latest = drawer.get_by_role("listitem").filter(has_text="Version 2")
    expect(latest).to_contain_text("(current)")
    expect(latest).to_contain_text("Corrected by Developer (you)")
    expect(latest).to_contain_text("total: 12.00 → 13.25")
    expect(drawer.get_by_role("button", name="Revert to version 1")).to_be_visible()


def test_a_value_corrected_in_the_table_leaves_the_walk_and_the_count(
    page: Page, app_url: str
) -> None:
    """The walk on a value, the same value corrected in the table: the walk kept it (with its
    old value, "Value 1 of 4") and the page kept saying 4 values needed review; the API's
    count was 3."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Corrected beside the walk")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{app_url}/app/{job}/results")
    expect(page.get_by_text("4 values need review")).to_be_visible()
    walk = open_walk(page, 4)
    expect(walk.get_by_role("definition").nth(0)).to_have_text(A)
    expect(walk.get_by_role("definition").nth(1)).to_have_text("due_date")

    page.get_by_role("button", name=f"Edit due_date of {A}").click()
    page.get_by_label(f"New due_date of {A}").fill("2026-01-31")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name=f"Edit due_date of {A}")).to_have_text("2026-01-31")
    expect(page.get_by_text("3 values need review")).to_be_visible()
    expect(walk.get_by_text("Value 1 of 3")).to_be_visible()
    expect(walk.get_by_role("definition").nth(0)).to_have_text(B)
    # The table keeps the focus on the value corrected.
    expect(page.get_by_role("button", name=f"Edit due_date of {A}")).to_be_focused()


def test_a_corrected_value_does_not_wear_the_extractors_confidence(
    page: Page, app_url: str
) -> None:
    """A total corrected by hand kept "✓99%" ("reviewed, confidence 99%"), and its evidence
    said "Total Due: $12.00 (found in the document)" beside the new 13.25: the extractor's
    confidence and verification, about the value the person replaced."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Corrected evidence")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{app_url}/app/{job}/results")
    page.get_by_role("button", name=f"Edit total of {A}").click()
    page.get_by_label(f"New total of {A}").fill("13.25")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name=f"Edit total of {A}")).to_have_text("13.25")
    badge = page.get_by_role("button", name=starts(f"Evidence for total of {A}: corrected"))
    expect(badge).to_have_text("✓corrected")
    badge.click()
    viewer = page.get_by_role("region", name=f"Source: {A}")
    expect(viewer.get_by_role("img", name="Where total is printed")).to_be_visible()
    expect(viewer.get_by_text("The extractor read total on page 1:")).to_be_visible()
    expect(viewer.get_by_text("a person corrected the value since")).to_be_visible()
    expect(viewer.get_by_text("(found in the document)")).to_have_count(0)
    # Its neighbour, not corrected, still shows the extractor's confidence.
    expect(
        page.get_by_role("button", name=starts(f"Evidence for total of {B}: verified"))
    ).to_have_text(re.compile(r"^✓\d+%$"))


def test_the_walk_says_where_it_is_as_it_moves(page: Page, app_url: str) -> None:
    """j and k redraw the value under the walk's focus, which a screen reader does not read
    again: the only live region said "Accepted …", so moving was silent."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Walk said aloud")
    page.goto(f"{app_url}/app/{job}/results")
    walk = open_walk(page, 4)
    said = walk.locator("[aria-live]", has_text=re.compile(r"\(\d+ of \d+\)|Nothing left"))
    expect(said).to_have_text(f"due_date of {A}: empty (1 of 4)")
    page.keyboard.press("j")
    expect(said).to_have_text(f"due_date of {B}: empty (2 of 4)")
    page.keyboard.press("a")
    expect(walk.get_by_text(f"Accepted due_date of {B}.")).to_be_visible()
    expect(said).to_have_text(f"vendor of {A}: empty (2 of 3)")
