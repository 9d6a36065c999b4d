"""Two reviewers on one result: the second's correction, accept or revert, made on a page
read before the first's correction, is refused (the result's etag) and the page shows the
result as it is now. It overwrote the first's unseen (the web trial, two tabs)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.test_trust import A, B, finished_job
from tests.web.walk import open_walk

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}


def test_a_correction_on_a_stale_page_overwrites_nothing(
    page: Page, context: BrowserContext, app_url: str
) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Two reviewers")
        other = context.new_page()
        try:
            for tab in (page, other):
                tab.goto(f"{app_url}/app/{job}/results")
                expect(tab.get_by_role("button", name=f"Edit total of {A}")).to_have_text("12.00")

            other.get_by_role("button", name=f"Edit total of {A}").click()
            other.get_by_label(f"New total of {A}").fill("13.25")
            other.get_by_role("button", name="Save", exact=True).click()
            expect(other.get_by_role("button", name=f"Edit total of {A}")).to_have_text("13.25")
        finally:
            other.close()

        page.get_by_role("button", name=f"Edit total of {A}").click()
        page.get_by_label(f"New total of {A}").fill("99.00")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("changed by someone else")
        expect(page.get_by_role("button", name=f"Edit total of {A}")).to_have_text("13.25")
        expect(page.get_by_role("button", name=f"Edit total of {A}")).to_be_focused()

        results = api.get(f"/v1/{job}/results").json()["results"]
        [row] = [r for r in results if A in r["filePaths"]]
        assert (row["values"]["total"], row["version"]) == ("13.25", 2)


def _correct_elsewhere(api: httpx.Client, job: str, path: str, total: str) -> None:
    """A colleague's correction, made after the page was read."""
    results = api.get(f"/v1/{job}/results").json()["results"]
    [row] = [r for r in results if path in r["filePaths"]]
    fixed = api.patch(
        f"/v1/{row['name']}", params={"updateMask": "values"}, json={"values": {"total": total}}
    )
    assert fixed.status_code == 200, fixed.text


def test_the_walk_and_the_history_act_on_no_value_changed_since(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Two reviewers walk")
        page.goto(f"{app_url}/app/{job}/results")
        walk = open_walk(page, 4)
        expect(walk.get_by_role("definition").nth(0)).to_have_text(A)

        _correct_elsewhere(api, job, A, "13.25")
        page.keyboard.press("a")
        alert = walk.get_by_role("alert")
        expect(alert).to_contain_text("was changed since the walk read it")
        expect(alert).to_contain_text("your accept was not saved. It is shown as it is now.")
        expect(walk.get_by_text("Value 1 of 4")).to_be_visible()
        expect(walk).to_be_focused()
        page.keyboard.press("a")
        expect(walk.get_by_text(f"Accepted due_date of {A}.")).to_be_visible()
        expect(walk.get_by_text("Value 1 of 3")).to_be_visible()

        # A correction made in the walk changes its own result: the walk's other value of
        # that result is not then refused as changed by someone else.
        expect(walk.get_by_role("definition").nth(0)).to_have_text(B)
        page.keyboard.press("e")
        page.keyboard.type("2026-12-31")
        page.keyboard.press("Enter")
        expect(walk.get_by_text(f"Corrected due_date of {B}.")).to_be_visible()
        expect(walk.get_by_text("Value 1 of 2")).to_be_visible()
        expect(walk.get_by_role("definition").nth(0)).to_have_text(A)  # vendor: a's, then b's
        page.keyboard.press("j")
        expect(walk.get_by_role("definition").nth(0)).to_have_text(B)
        page.keyboard.press("a")
        expect(walk.get_by_text(f"Accepted vendor of {B}.")).to_be_visible()
        page.keyboard.press("Escape")

        # The history's revert, on a page read before a colleague's correction.
        page.get_by_role("button", name=f"History of {A}").click()
        drawer = page.get_by_role("region", name=f"History of {A}")
        expect(drawer.get_by_role("listitem").filter(has_text="Version 2")).to_contain_text(
            "(current)"
        )
        _correct_elsewhere(api, job, A, "14.00")
        drawer.get_by_role("button", name="Revert to version 1").click()
        expect(drawer.get_by_role("alert")).to_contain_text("so it was not reverted")
        expect(drawer.get_by_role("listitem").filter(has_text="Version 3")).to_contain_text(
            "(current)"
        )
        expect(page.get_by_role("button", name=f"Edit total of {A}")).to_have_text("14.00")
        drawer.get_by_role("button", name="Revert to version 1").click()
        expect(drawer.get_by_role("listitem").filter(has_text="Version 4")).to_contain_text(
            "Restored version 1"
        )
        results = api.get(f"/v1/{job}/results").json()["results"]
        [row] = [r for r in results if A in r["filePaths"]]
        assert (row["values"]["total"], row["version"]) == ("12.00", 4)


def test_a_table_correction_does_not_vouch_for_a_value_the_walk_read_before(
    page: Page, app_url: str
) -> None:
    """The walk read a.pdf at version 1; a colleague's correction made it 2 and the table read
    that; the user's own correction in the table made it 3. The walk's a.pdf values still show
    version 1: they took the new etag and "a" marked reviewed what the walk did not show."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Walk older than the table")
        page.goto(f"{app_url}/app/{job}/results")
        walk = open_walk(page, 4)
        _correct_elsewhere(api, job, A, "13.25")
        # An accept of b.pdf's value: the page reads its results again, a.pdf's at version 2.
        page.keyboard.press("j")
        expect(walk.get_by_role("definition").nth(0)).to_have_text(B)
        page.keyboard.press("a")
        expect(walk.get_by_text("Value 2 of 3")).to_be_visible()
        expect(page.get_by_role("button", name=f"Edit total of {A}")).to_have_text("13.25")

        page.get_by_role("button", name=f"Edit invoice_number of {A}").click()
        page.get_by_label(f"New invoice_number of {A}").fill("INV-A")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_role("button", name=f"Edit invoice_number of {A}")).to_have_text("INV-A")
        expect(walk.get_by_role("definition").nth(0)).to_have_text(A)
        field = walk.get_by_role("definition").nth(1).inner_text()
        walk.get_by_role("button", name="Accept value").click()
        expect(walk.get_by_role("alert")).to_contain_text("was changed since the walk read it")
        results = api.get(f"/v1/{job}/results").json()["results"]
        [row] = [r for r in results if A in r["filePaths"]]
        assert row["version"] == 3
        assert field in ("due_date", "vendor")
        assert not row["assessments"][field].get("reviewed")
