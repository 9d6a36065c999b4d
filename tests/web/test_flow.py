"""The document-to-data flow in a real browser, found by role and label as a user finds it."""

from __future__ import annotations

import csv
import io
import re
import struct
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import FilePayload, Page, Route, expect

from bytereview.core.settings import DEV_TOKEN
from tests.archives import zip_bytes
from tests.pdfs import text_pdf
from tests.web.jobs import ready_job, ready_zip_job

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}
XSS_NAME = "<img src=x onerror=alert(1)>.pdf"


def pdf(number: str, total: str) -> bytes:
    return text_pdf(["ACME Corporation", f"Invoice Number: {number}", f"Total Due: ${total}"])


def broken_png() -> bytes:
    """A PNG whose header analysis accepts but whose pixels no decoder can read: its task
    fails every time, so the job has a failed task to retry."""
    header = struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 120, 80) + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + header + b"\0\0\0\0" + b"not pixels" * 40


def one_pdf(name: str) -> FilePayload:
    return {"name": name, "mimeType": "application/pdf", "buffer": pdf("X-1", "1.00")}


def upload_files() -> list[FilePayload]:
    archive = zip_bytes(
        {
            "march/c.pdf": pdf("INV-3", "30.90"),
            "march/d.pdf": pdf("INV-4", "40.00"),
            # Not a document type the platform reads: listed as a problem, the job goes on.
            "march/notes.bin": bytes(range(256)) * 4,
        }
    )
    return [
        {"name": "a.pdf", "mimeType": "application/pdf", "buffer": pdf("INV-1", "10.00")},
        {"name": XSS_NAME, "mimeType": "application/pdf", "buffer": pdf("INV-2", "20.00")},
        {"name": "batch.zip", "mimeType": "application/zip", "buffer": archive},
        {"name": "broken.png", "mimeType": "image/png", "buffer": broken_png()},
    ]


def test_upload_configure_extract_edit_export(page: Page, app_url: str, tmp_path: Path) -> None:
    page.goto(app_url)
    # Dev mode signs in by itself; the user's name and email are shown.
    expect(page.get_by_label("Signed in as")).to_contain_text("Developer")
    expect(page.get_by_label("Signed in as")).to_contain_text("dev@localhost")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="New job").click()
    expect(page.get_by_role("heading", name="New job")).to_be_visible()
    page.get_by_label("Job name").fill("Browser job")
    page.get_by_label("Choose files").set_input_files(upload_files())
    expect(page.get_by_text("4 files")).to_be_visible()
    page.get_by_role("button", name="Upload and analyse").click()

    # Analysis: live progress, the unreadable file named in words, continue when ready.
    expect(page).to_have_url(re.compile(r"/app/jobs/[0-9a-f]{32}/analysis$"))
    expect(page.get_by_role("link", name="Continue to configure")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("batch.zip/march/notes.bin")).to_be_visible()
    # Counts in words whose noun agrees with the number.
    expect(page.get_by_text("1 archive unpacked", exact=True)).to_be_visible()
    expect(page.get_by_text("5 files ready", exact=True)).to_be_visible()
    expect(page.get_by_text("not a type that can be read")).to_be_visible()
    page.get_by_role("link", name="Continue to configure").click()

    # Configure: the API's validation message shows next to the field it is about.
    page.get_by_label("Name of field 1").fill("invoice number")
    page.get_by_role("button", name="Save fields").click()
    expect(page.locator("#field-1-name-error")).to_contain_text("must start with a letter")
    expect(page.get_by_label("Name of field 1")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Name of field 1").fill("invoice_number")
    page.get_by_label("Instruction of field 1").fill("The invoice number")
    page.get_by_role("button", name="Add field").click()
    page.get_by_label("Name of field 2").fill("total")
    page.get_by_label("Data type of field 2").select_option("currency")
    # The files panel: ready files by folder, how many tasks each grouping runs, a preview.
    expect(page.get_by_text("5 files ready in 2 folders; 5 tasks will run.")).to_be_visible()
    page.get_by_label("One result per folder").check()
    expect(page.get_by_text("5 files ready in 2 folders; 2 tasks will run.")).to_be_visible()
    page.get_by_label("One result per file").check()
    expect(page.get_by_text("5 files ready in 2 folders; 5 tasks will run.")).to_be_visible()
    # One folder's files together: the archive's march folder gives one result.
    tree = page.get_by_role("region", name="Files and folders")
    expect(tree.get_by_label("Results for batch.zip", exact=True)).to_be_visible()
    tree.get_by_label("Results for batch.zip/march").select_option(label="One result per folder")
    expect(page.get_by_text("5 files ready in 2 folders; 4 tasks will run.")).to_be_visible()
    page.get_by_role("button", name="Preview a.pdf").click()
    preview = page.get_by_role("region", name="Preview")
    expect(preview.get_by_role("row", name="invoice_number")).to_contain_text("INV-1")
    expect(preview.get_by_role("row", name="total")).to_contain_text("10")
    # The system prompt: the seeded one, active, is the choice offered.
    expect(page.get_by_label("System prompt")).to_contain_text("Version 1 (active)")
    page.get_by_label("System prompt").select_option(label="Version 1 (active)")
    page.get_by_role("button", name="Start extraction").click()

    # The job page fills in live as tasks finish.
    expect(page).to_have_url(re.compile(r"/results$"))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    # The broken image's task failed, and one file could not be read: partially completed.
    expect(page.get_by_text("Partially completed", exact=True)).to_be_visible(timeout=90_000)
    # It got there on the event stream, without polling.
    assert not [u for u in requested if u.endswith("/progress")], requested
    first = page.get_by_role("button", name="Edit invoice_number of a.pdf")
    expect(first).to_have_text("INV-1")
    march = "batch.zip/march/c.pdf, batch.zip/march/d.pdf"
    expect(page.get_by_role("button", name=f"Edit invoice_number of {march}")).to_have_text("INV-3")
    expect(page.get_by_role("button", name=f"Edit total of {march}")).to_have_text("30.90")
    # The hostile file name is shown as text, never parsed as markup.
    expect(page.get_by_role("rowheader", name=XSS_NAME)).to_be_visible()
    assert page.locator("img").count() == 0

    # Edit a value in place: read as its field's type (an amount keeps two places), marked
    # edited, and kept after a reload.
    page.get_by_role("button", name="Edit total of a.pdf").click()
    page.get_by_label("New total of a.pdf").fill("lots")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("total (Currency field): no amount in 'lots'")
    page.get_by_label("New total of a.pdf").fill("99.5")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("button", name="Edit total of a.pdf")).to_have_text("99.50")
    expect(page.get_by_role("rowheader", name="a.pdf").get_by_text("edited")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Edit total of a.pdf")).to_have_text("99.50")
    expect(page.get_by_role("rowheader", name="a.pdf").get_by_text("edited")).to_be_visible()

    # A value holding markup is shown as the characters it is.
    page.get_by_role("button", name="Edit invoice_number of a.pdf").click()
    page.get_by_label("New invoice_number of a.pdf").fill(
        "<b>INV-1</b><img src=x onerror=alert(1)>"
    )
    page.get_by_label("New invoice_number of a.pdf").press("Enter")
    expect(page.get_by_role("button", name="Edit invoice_number of a.pdf")).to_have_text(
        "<b>INV-1</b><img src=x onerror=alert(1)>"
    )
    assert page.locator("main b, main img").count() == 0
    page.get_by_role("button", name="Edit invoice_number of a.pdf").click()
    page.get_by_label("New invoice_number of a.pdf").fill("INV-1")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("button", name="Edit invoice_number of a.pdf")).to_have_text("INV-1")

    # The source document beside its values: the page drawn by the server, zoomable.
    page.get_by_role("button", name="Show the source of a.pdf").click()
    viewer = page.get_by_role("region", name="Source: a.pdf")
    image = viewer.get_by_role("img", name="Page 1 of a.pdf")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1200
    assert (image.get_attribute("src") or "").startswith("blob:")
    expect(viewer.get_by_text("Page 1 of 1")).to_be_visible()
    expect(viewer.get_by_role("definition").first).to_have_text("INV-1")
    # Beside the viewer, on a narrow screen, the file column keeps room for a name and its
    # buttons stay whole (a name once broke a letter a line, "Source" as "Sour / ce").
    page.set_viewport_size({"width": 600, "height": 720})
    source = page.get_by_role("button", name=f"Show the source of {march}")
    height = page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight) || 24")
    assert (source.bounding_box() or {"height": 1e9})["height"] < 2 * height
    header = page.get_by_role("rowheader", name="a.pdf").bounding_box()
    assert header is not None
    assert header["width"] >= 150
    page.set_viewport_size({"width": 1280, "height": 720})
    viewer.get_by_role("button", name="Zoom in").click()
    expect(viewer.get_by_label("Zoom")).to_have_text("125%")
    width = image.evaluate("img => img.getBoundingClientRect().width")
    viewer.get_by_role("button", name="Fit width").click()
    assert image.evaluate("img => img.getBoundingClientRect().width") < width
    # A combined result shows each of its files.
    page.get_by_role("button", name=f"Show the source of {march}").click()
    viewer = page.get_by_role("region", name="Source: batch.zip/march/c.pdf")
    expect(viewer.get_by_role("img", name="Page 1 of batch.zip/march/c.pdf")).to_be_visible()
    viewer.get_by_label("File").select_option(label="batch.zip/march/d.pdf")
    viewer = page.get_by_role("region", name="Source: batch.zip/march/d.pdf")
    expect(viewer.get_by_role("img", name="Page 1 of batch.zip/march/d.pdf")).to_be_visible()
    viewer.get_by_role("button", name="Close source").click()
    expect(page.get_by_role("region", name=re.compile("^Source"))).to_have_count(0)

    # Columns sort by a click on their header, one way then the other.
    results = page.get_by_role("table", name="Extracted values")
    page.get_by_role("button", name="invoice_number", exact=True).click()
    expect(page.get_by_role("columnheader", name="invoice_number")).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(results.get_by_role("row").nth(1)).to_contain_text("INV-1")
    page.get_by_role("button", name="invoice_number", exact=True).click()
    expect(page.get_by_role("columnheader", name="invoice_number")).to_have_attribute(
        "aria-sort", "descending"
    )
    expect(results.get_by_role("row").nth(1)).to_contain_text("INV-3")

    # Export CSV: a downloaded file holding every row, the edit included.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export CSV").click()
    saved = tmp_path / "export.csv"
    download_info.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 3, rows
    assert {r["invoice_number"] for r in rows} == {"INV-1", "INV-2", "INV-3"}
    assert any(r["total"] == "99.50" for r in rows), rows

    # Retry failed: the broken image's task is queued again, runs, and fails again.
    expect(page.get_by_text("3 of 4 tasks done, 1 failed")).to_be_visible()
    page.get_by_text("Events", exact=True).click()
    # One action for failed tasks (not a second "Re-run failed tasks" beside it).
    expect(page.get_by_role("button", name="Re-run failed tasks")).to_have_count(0)
    page.get_by_role("button", name="Retry failed tasks").click()
    expect(page.get_by_text("1 failed task queued again.", exact=True)).to_be_visible()
    expect(
        page.get_by_role("listitem").filter(has_text="1 task(s) to queue again").first
    ).to_be_visible()
    expect(page.get_by_text("3 of 4 tasks done, 1 failed")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Partially completed", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Retry failed tasks")).to_be_visible()

    # The dashboard lists the job; opening it lands on its results.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("link", name="Browser job")).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Browser job"))
    expect(row).to_contain_text("Partially completed")
    page.get_by_label("Status").select_option("FAILED")
    expect(page.get_by_role("link", name="Browser job")).to_have_count(0)
    page.get_by_label("Status").select_option("PARTIALLY_COMPLETED")
    page.get_by_role("link", name="Browser job").click()
    expect(page.get_by_role("heading", name="Browser job")).to_be_visible()

    # The job's events tell its story.
    page.get_by_text("Events", exact=True).click()
    expect(
        page.get_by_role("listitem").filter(has_text="RUNNING → PARTIALLY_COMPLETED").first
    ).to_be_visible()

    # Delete, after confirming in a dialog.
    page.get_by_role("button", name="Delete job").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.get_by_role("link", name="Browser job")).to_have_count(0)


def test_api_error_shows_message_with_request_id(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/app/jobs/{'0' * 32}/results")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("not found")
    expect(alert).to_contain_text(re.compile(r"request id [0-9a-f]{32}"))


def test_long_lists_render_only_the_rows_in_view(page: Page, app_url: str) -> None:
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    counts = page.evaluate(
        """async () => {
          const { virtualList } = await import("/app/virtual-list.js");
          const list = virtualList({
            label: "Ten thousand",
            renderRow: (item) => Object.assign(document.createElement("li"), { textContent: item }),
          });
          document.getElementById("main").append(list.element);
          list.setItems(Array.from({ length: 10000 }, (_, i) => `row ${i}`));
          const before = list.renderedCount;
          list.scrollTo(9000);
          return [before, list.renderedCount];
        }"""
    )
    assert counts[0] < 40
    assert counts[1] < 40
    region = page.get_by_role("region", name="Ten thousand")
    expect(region.get_by_text("row 9000", exact=True)).to_be_visible()
    expect(region.get_by_text("row 0", exact=True)).to_have_count(0)


def test_a_failed_upload_is_retried(page: Page, app_url: str) -> None:
    failures: list[str] = []

    def fail_first_upload(route: Route) -> None:
        if not failures:
            failures.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/v1/storage/objects?**", fail_first_upload)
    page.goto(f"{app_url}/app/jobs/new")
    page.get_by_label("Choose files").set_input_files(one_pdf("r.pdf"))
    page.get_by_role("button", name="Upload and analyse").click()
    expect(
        page.get_by_text("Failed: The upload could not reach the storage server.")
    ).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("1 upload failed")
    page.get_by_role("button", name="Retry r.pdf").click()
    expect(page).to_have_url(re.compile(r"/analysis$"))
    assert len(failures) == 1


def test_cancel_stops_uploads_and_keeps_nothing(page: Page, app_url: str) -> None:
    held: list[Route] = []
    # The upload never gets an answer, so it is still running when the user cancels.
    page.route("**/v1/storage/objects?**", lambda route: held.append(route))
    page.goto(f"{app_url}/app/jobs/new")
    page.get_by_label("Job name").fill("Cancelled upload")
    page.get_by_label("Choose files").set_input_files(one_pdf("c.pdf"))
    page.get_by_role("button", name="Upload and analyse").click()
    expect(page.get_by_text("Uploading", exact=True)).to_be_visible()
    page.get_by_role("button", name="Cancel upload").click()
    expect(page.get_by_text("Upload cancelled; nothing was kept.")).to_be_visible()
    assert held
    with httpx.Client(base_url=app_url, headers=DEV) as api:
        names = [j["displayName"] for j in api.get("/v1/jobs").json().get("jobs", [])]
    assert "Cancelled upload" not in names


def test_progress_falls_back_to_polling_without_the_stream(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = ready_job(api, "Polled job")
        api.post(
            f"/v1/{job}:configure", json={"fields": [{"name": "total", "dataType": "currency"}]}
        )
        page.route("**/*:watch?**", lambda route: route.abort("connectionrefused"))
        page.goto(f"{app_url}/app/{job}/results")
        # Three failed connects, 1 s and 2 s apart (web/api/watch.js), after the page's own
        # load: ~4 s by design, past the default 5 s wait on a loaded machine (CI run 49).
        expect(
            page.get_by_text("Live updates unavailable; checking every few seconds.")
        ).to_be_visible(timeout=20_000)
        api.post(f"/v1/{job}:start", json={})
    # Nothing is streamed, yet the page follows the job to its end and shows the values.
    expect(page.get_by_text("Completed", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Edit total of invoices/a.pdf")).to_have_text("12.00")


def test_an_unfinished_upload_says_what_to_do(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV) as api:
        created = api.post(
            "/v1/jobs",
            # A name no other test gives a job: the platform is shared by the session's
            # web tests, and test_races leaves its own "Left behind" jobs in the list.
            json={"displayName": "Never uploaded", "files": [{"path": "l.pdf", "sizeBytes": 10}]},
        )
        job = created.json()["job"]["name"]
    page.goto(f"{app_url}/app/{job}")
    expect(page).to_have_url(re.compile(r"/analysis$"))
    expect(page.get_by_text("The uploads of this job were never finished.")).to_be_visible()
    page.get_by_role("button", name="Delete job").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.get_by_role("link", name="Never uploaded")).to_have_count(0)


def paused_job(api: httpx.Client, name: str) -> str:
    """A started job paused over REST right after its start, while most tasks are queued.

    The offline extractor is fast, so on a rare run every task finishes before the pause
    lands; then the job is made again (the pause's refusal is checked to be that case).
    """
    fields = {"fields": [{"name": "total", "dataType": "currency"}]}
    for _ in range(3):
        job = ready_zip_job(api, name, 60)
        api.post(f"/v1/{job}:configure", json=fields)
        assert api.post(f"/v1/{job}:start", json={}).status_code == 200
        paused = api.post(f"/v1/{job}:pause", json={})
        if paused.status_code == 200:
            assert paused.json()["status"] == "PAUSED", paused.text
            return job
        assert "has completed" in paused.text, paused.text
        api.delete(f"/v1/{job}")
    raise AssertionError("every try completed before it could be paused")


def test_pause_resume_and_cancel_from_the_job_page(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        jobs = [paused_job(api, name) for name in ("Paused then resumed", "Paused then cancelled")]
    resumed, cancelled = jobs
    page.goto(f"{app_url}/app/{resumed}")
    expect(page.get_by_text("Paused", exact=True)).to_be_visible()
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_text("Completed", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Edit total of batch.zip/batch/007.pdf")).to_have_text(
        "7.00"
    )

    page.goto(f"{app_url}/app/{cancelled}")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    page.get_by_role("button", name="Cancel job").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel job").click()
    expect(page.get_by_text("Cancelled", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Resume")).to_have_count(0)


def test_a_picked_folder_keeps_its_sub_folders(page: Page, app_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    (folder / "march" / "week 1").mkdir(parents=True)
    (folder / "march" / "week 1" / "a.pdf").write_bytes(pdf("F-1", "1.00"))
    (folder / "b.pdf").write_bytes(pdf("F-2", "2.00"))
    page.goto(f"{app_url}/app/jobs/new")
    page.get_by_label("Choose a folder").set_input_files(folder)
    uploads = page.get_by_role("table", name="Files to upload")
    expect(uploads.get_by_role("cell", name="scans/march/week 1/a.pdf", exact=True)).to_be_visible()
    expect(uploads.get_by_role("cell", name="scans/b.pdf", exact=True)).to_be_visible()
    page.get_by_role("button", name="Remove scans/b.pdf").click()
    expect(uploads.get_by_role("cell", name="scans/b.pdf", exact=True)).to_have_count(0)
    expect(page.get_by_text("1 file,")).to_be_visible()


def test_files_dropped_on_the_drop_zone_are_listed(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/app/jobs/new")
    transfer = page.evaluate_handle(
        """() => {
          const transfer = new DataTransfer();
          transfer.items.add(new File(["%PDF-1.4 one"], "dropped-1.pdf", { type: "application/pdf" }));
          transfer.items.add(new File(["%PDF-1.4 two"], "dropped-2.pdf", { type: "application/pdf" }));
          return transfer;
        }"""
    )
    page.get_by_role("region", name="Drop zone").dispatch_event("drop", {"dataTransfer": transfer})
    uploads = page.get_by_role("table", name="Files to upload")
    expect(uploads.get_by_role("cell", name="dropped-1.pdf", exact=True)).to_be_visible()
    expect(uploads.get_by_role("cell", name="dropped-2.pdf", exact=True)).to_be_visible()
    expect(page.get_by_text("2 files,")).to_be_visible()
