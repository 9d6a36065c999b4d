"""Trust on the job page: confidence, evidence on the page image, the review walk by keyboard,
a result's history with revert, re-runs, golden documents and template scores."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, Response, expect

from bytereview.core.settings import DEV_TOKEN
from tests.hostile_documents import truncated_png
from tests.pdfs import text_pdf
from tests.web.jobs import ready_job, wait_for
from tests.web.walk import open_walk

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}
# vendor and due_date are printed on neither document: the offline extractor finds nothing,
# and the empty values are below the review threshold (2 results x 2 fields = 4 to review).
FIELDS = [
    {"name": "invoice_number", "dataType": "text"},
    {"name": "total", "dataType": "currency"},
    {"name": "vendor", "dataType": "text"},
    {"name": "due_date", "dataType": "date_ymd"},
]
A = "invoices/a.pdf"
# gateway/web/busy-retry.js BUSY_DELAYS: the waits before the viewer asks for a page again.
BUSY_DELAYS_MS = [150, 300, 600, 900, 1200]
B = "invoices/more.zip/march/b.pdf"


def starts(text: str) -> re.Pattern[str]:
    """A name that starts with `text` (slashes escaped: Playwright sends the pattern as /.../)."""
    return re.compile("^" + re.escape(text).replace("/", r"\/"))


def golden_template(api: httpx.Client, name: str) -> str:
    """A template of the first two FIELDS (golden documents score against it)."""
    created = api.post("/v1/templates", json={"displayName": name, "fields": FIELDS[:2]})
    assert created.status_code == 200, created.text
    return str(created.json()["name"])


def finished_job(api: httpx.Client, name: str, template: str = "") -> str:
    job = ready_job(api, name)
    config = {"template": template} if template else {"fields": FIELDS}
    assert api.post(f"/v1/{job}:configure", json=config).status_code == 200
    api.post(f"/v1/{job}:start", json={})
    wait_for(api, job, {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED"})
    return job


def test_evidence_review_walk_history_and_revert(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Trust walk")
        results = api.get(f"/v1/{job}/results").json()["results"]
    by_path = {r["filePaths"][0]: r for r in results}
    box = by_path[A]["assessments"]["total"]["evidence"]["box"]

    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{app_url}/app/{job}/results")
    expect(page.get_by_text("4 values need review")).to_be_visible()
    # A verified value says so; an empty one the extractor is unsure of asks for review.
    expect(
        page.get_by_role("button", name=starts(f"Evidence for total of {A}: verified"))
    ).to_be_visible()
    expect(
        page.get_by_role("button", name=starts(f"Evidence for vendor of {A}: needs review"))
    ).to_be_visible()

    # Evidence: the page image with the quote's box outlined where the platform found it.
    page.get_by_role("button", name=starts(f"Evidence for total of {A}:")).click()
    viewer = page.get_by_role("region", name=f"Source: {A}")
    image = viewer.get_by_role("img", name=f"Page 1 of {A}")
    outline = viewer.get_by_role("img", name="Where total is printed")
    expect(outline).to_be_visible()
    expect(viewer.get_by_text("Total Due: $12.00")).to_be_visible()
    expect(viewer.get_by_text("(found in the document)")).to_be_visible()
    drawn = image.bounding_box()
    found = outline.bounding_box()
    assert drawn
    assert found
    assert abs((found["x"] - drawn["x"]) / drawn["width"] - box["left"]) < 0.01
    assert abs((found["y"] - drawn["y"]) / drawn["height"] - box["top"]) < 0.01
    right = (found["x"] + found["width"] - drawn["x"]) / drawn["width"]
    assert abs(right - box["right"]) < 0.01
    # The box follows the zoom: it stays on the same fraction of the page.
    viewer.get_by_role("button", name="Zoom in").click()
    expect(viewer.get_by_label("Zoom")).to_have_text("125%")
    drawn, found = image.bounding_box(), outline.bounding_box()
    assert drawn
    assert found
    assert abs((found["x"] - drawn["x"]) / drawn["width"] - box["left"]) < 0.01

    # The review walk, by keyboard only.
    walk = open_walk(page, 4)
    expect(walk).to_be_focused()
    page.keyboard.press("j")
    expect(walk.get_by_text("Value 2 of 4")).to_be_visible()
    page.keyboard.press("ArrowDown")
    expect(walk.get_by_text("Value 3 of 4")).to_be_visible()
    page.keyboard.press("k")
    page.keyboard.press("ArrowUp")
    expect(walk.get_by_text("Value 1 of 4")).to_be_visible()
    # The most consequential first: the due date (a date weighs more than text), a.pdf's then b.pdf's.
    expect(walk.get_by_role("definition").nth(0)).to_have_text(A)
    expect(walk.get_by_role("definition").nth(1)).to_have_text("due_date")
    page.keyboard.press("a")
    expect(walk.get_by_text(f"Accepted due_date of {A}.")).to_be_visible()
    expect(walk.get_by_text("Value 1 of 3")).to_be_visible()
    expect(page.get_by_text("3 values need review")).to_be_visible()
    expect(
        page.get_by_role("button", name=starts(f"Evidence for due_date of {A}: reviewed"))
    ).to_be_visible()
    # Correct the next one (b.pdf's due_date), with a reason.
    expect(walk.get_by_role("definition").nth(0)).to_have_text(B)
    page.keyboard.press("e")
    expect(walk.get_by_label("Corrected due_date")).to_be_focused()
    page.keyboard.type("2026-12-31")
    walk.get_by_label("Reason").fill("printed on the letterhead")
    walk.get_by_label("Reason").press("Enter")
    expect(walk.get_by_text(f"Corrected due_date of {B}.")).to_be_visible()
    expect(walk.get_by_text("Value 1 of 2")).to_be_visible()
    expect(page.get_by_text("2 values need review")).to_be_visible()
    expect(page.get_by_role("button", name=f"Edit due_date of {B}")).to_have_text("2026-12-31")
    expect(walk).to_be_focused()
    page.keyboard.press("Escape")
    expect(walk).to_be_hidden()
    expect(page.get_by_role("button", name="Review values")).to_be_focused()

    # The history shows the correction (who, old -> new, why) and reverts it.
    page.get_by_role("button", name=f"History of {B}").click()
    drawer = page.get_by_role("region", name=f"History of {B}")
    versions = drawer.get_by_role("list", name=f"Versions of {B}")
    latest = versions.get_by_role("listitem").filter(has_text="Version 2")
    expect(latest).to_contain_text("Corrected by")
    expect(latest).to_contain_text("due_date: — → 2026-12-31")
    expect(latest).to_contain_text("Reason: printed on the letterhead")
    expect(latest).to_contain_text("(current)")
    drawer.get_by_role("button", name="Revert to version 1").click()
    expect(versions.get_by_role("listitem").filter(has_text="Version 3")).to_contain_text(
        "Reverted"
    )
    expect(versions.get_by_role("listitem").filter(has_text="Version 3")).to_contain_text(
        "Restored version 1"
    )
    expect(page.get_by_role("button", name=f"Edit due_date of {B}")).to_have_text("—")
    drawer.get_by_role("button", name="Close history").click()
    expect(drawer).to_be_hidden()
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        result = api.get(f"/v1/{by_path[B]['name']}/versions").json()["versions"][-1]
    assert result["version"] == 3
    assert result["values"]["due_date"] is None


def test_rerun_mark_golden_and_score_a_template(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        template = golden_template(api, "Golden invoices")
        job = finished_job(api, "Golden source", template)

    page.goto(f"{app_url}/app/{job}/results")
    # Re-run a chosen row: its inputs are unchanged, so it is skipped unless forced.
    page.get_by_label(f"Select {A}").check()
    page.get_by_role("button", name="Re-run selected").click()
    expect(page.get_by_text("0 task(s) queued again, 1 skipped")).to_be_visible()
    page.get_by_label("Even if unchanged").check()
    page.get_by_role("button", name="Re-run selected").click()
    expect(page.get_by_text("1 task(s) queued again.")).to_be_visible()
    expect(page.get_by_text("Completed", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name=f"History of {A}")).to_have_text("History (v2)")
    page.get_by_role("button", name=f"History of {A}").click()
    drawer = page.get_by_role("region", name=f"History of {A}")
    expect(drawer.get_by_role("listitem").filter(has_text="Version 2")).to_contain_text("Re-run")

    # Mark both rows golden for the job's template; then score the version on them.
    page.get_by_label(f"Select {B}").check()
    expect(page.get_by_label("Template", exact=True)).to_have_value(template)
    page.get_by_role("button", name="Mark selected golden").click()
    expect(
        page.get_by_text('Marked 2 result(s) golden for the template "Golden invoices".')
    ).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
    versions = page.get_by_role("list", name="Versions of Golden invoices")
    expect(versions.get_by_role("listitem")).to_have_count(1)
    expect(versions).to_contain_text("Version 1: not scored")
    versions.get_by_role("button", name="Score version 1 of Golden invoices").click()
    # The same fields read the same documents again: every golden value comes back.
    expect(versions).to_contain_text(
        "Version 1: 100% on 2 golden document(s) (4 of 4 values)", timeout=60_000
    )


def test_a_combined_result_names_the_file_it_left_out(page: Page, app_url: str) -> None:
    """A folder read as one result, one of its three files a truncated image: the folder's
    result comes from the other two, the results table says which file was left out and
    why (over REST too, from the whole platform: ingest, extract, jobs, gateway), and the
    review walk asks about the empty value that file may hold."""
    files = {
        "receipts/a.pdf": text_pdf(["Invoice Number: R-7"]),
        "receipts/b.png": truncated_png(),
        "receipts/c.pdf": text_pdf(["Total Due: $31.50"]),
    }
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        created = api.post(
            "/v1/jobs",
            json={
                "displayName": "Left out",
                "files": [{"path": p, "sizeBytes": len(b)} for p, b in files.items()],
            },
        ).json()
        for target in created["uploadTargets"]:
            assert httpx.put(target["url"], content=files[target["path"]]).status_code == 200
        job = created["job"]["name"]
        api.post(f"/v1/{job}:finalizeUploads", json={})
        wait_for(api, job, {"READY"})
        config = {"fields": FIELDS[:3], "taskMode": "TASK_MODE_COMBINED"}
        assert api.post(f"/v1/{job}:configure", json=config).status_code == 200
        api.post(f"/v1/{job}:start", json={})
        wait_for(api, job, {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED"})
        assert api.get(f"/v1/{job}").json()["status"] == "COMPLETED"
        [result] = api.get(f"/v1/{job}/results").json()["results"]
    assert result["values"] == {"invoice_number": "R-7", "total": "31.50", "vendor": None}
    [skipped] = result["skippedFiles"]
    assert skipped["path"] == "receipts/b.png"
    assert skipped["reason"] == "cannot read the image (image file is truncated)"

    page.goto(f"{app_url}/app/{job}/results")
    expect(page.get_by_text("1 file left out")).to_be_visible()
    left_out = page.get_by_role(
        "list", name="Files left out of receipts/a.pdf, receipts/b.png, receipts/c.pdf"
    )
    expect(left_out.get_by_role("listitem")).to_have_text(
        ["Left out: receipts/b.png — cannot read the image (image file is truncated)"]
    )
    # The empty vendor may be printed in the file left out: the review walk says so.
    page.get_by_role("button", name="Review values").click()
    walk = page.get_by_role("region", name="Review")
    expect(walk).to_contain_text("vendor")
    expect(walk).to_contain_text("empty, and a file of the folder could not be read")


@contextlib.contextmanager
def drawing(app_url: str, file: str) -> Iterator[None]:
    """The dev user's own draws of `file`, eight callers at a time, keep its four RenderPage
    slots busy for as long as the block lasts."""
    flooding, full = threading.Event(), threading.Event()
    flooding.set()

    def flood() -> None:
        with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
            while flooding.is_set():
                drawn = api.get(f"/v1/{file}:renderPage", params={"width": 2400})
                if drawn.status_code == 429:
                    full.set()

    floods = [threading.Thread(target=flood) for _ in range(8)]
    for thread in floods:
        thread.start()
    try:
        assert full.wait(timeout=10), "the draws never filled the slots"
        yield
    finally:
        flooding.clear()
        for thread in floods:
            thread.join()


def busy(response: Response) -> bool:
    return ":renderPage" in response.url and response.status == 429


def test_the_viewer_waits_out_draws_already_in_flight_quietly(page: Page, app_url: str) -> None:
    """Four draws in flight is all a user has (RenderPage's cap); a user paging quickly
    still has the draws of pages left behind running (an aborted fetch does not stop one),
    and the page wanted now was refused with "Too many requests". Here the same user's
    draws keep the four slots busy while the viewer opens: it meets a 429, waits, and shows
    the page once they are done, without a word about it."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Busy viewer")
        files = api.get(f"/v1/{job}/files").json()["files"]
    [file] = [f["name"] for f in files if f["originalPath"] == A]
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{app_url}/app/{job}/results")
    with drawing(app_url, file), page.expect_response(busy, timeout=10_000):
        page.get_by_role("button", name=starts(f"Evidence for total of {A}:")).click()
    viewer = page.get_by_role("region", name=f"Source: {A}")
    expect(viewer.get_by_role("img", name=f"Page 1 of {A}")).to_be_visible()
    expect(viewer.get_by_role("alert")).to_have_count(0)


def test_pages_left_behind_are_not_asked_for_again(page: Page, app_url: str) -> None:
    """Paging on while the server is busy: only the page wanted now is asked for again."""
    path = "long.pdf"
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        pdf = text_pdf(["Invoice Number: L-1", "Total Due: $5.00"], pages=12)
        created = api.post(
            "/v1/jobs", json={"files": [{"path": path, "sizeBytes": len(pdf)}]}
        ).json()
        [target] = created["uploadTargets"]
        assert httpx.put(target["url"], content=pdf).status_code == 200
        job = created["job"]["name"]
        api.post(f"/v1/{job}:finalizeUploads", json={})
        wait_for(api, job, {"READY"})
        assert api.post(f"/v1/{job}:configure", json={"fields": FIELDS}).status_code == 200
        api.post(f"/v1/{job}:start", json={})
        wait_for(api, job, {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED"})
    asked: list[tuple[float, str]] = []
    page.on(
        "request",
        lambda r: asked.append((time.monotonic(), r.url)) if ":renderPage" in r.url else None,
    )
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{app_url}/app/{job}/results")
    page.get_by_role("button", name=f"Show the source of {path}").click()
    viewer = page.get_by_role("region", name=f"Source: {path}")
    expect(viewer.get_by_role("img", name=f"Page 1 of {path}")).to_be_visible()
    with drawing(app_url, target["file"]), page.expect_response(busy, timeout=10_000):
        for _ in range(5):
            viewer.get_by_role("button", name="Next page").click()
    expect(viewer.get_by_role("img", name=f"Page 6 of {path}")).to_be_visible()
    expect(viewer.get_by_role("alert")).to_have_count(0)
    shown = time.monotonic()
    page.wait_for_timeout(sum(BUSY_DELAYS_MS) + 500)  # every retry there could be, and more
    assert not [url for at, url in asked if at > shown], asked
    # Pages 2 to 5 were each asked for at most once more after a 429 met while still wanted.
    for left in range(2, 6):
        assert sum(f"page={left}&" in url for _, url in asked) <= 2, (left, asked)
