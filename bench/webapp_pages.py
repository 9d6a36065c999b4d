"""Web app: time to a usable page in Chromium for a job of many files and results.

    .venv/bin/python bench/webapp_pages.py                # 10,000 files in 100 folders
    .venv/bin/python bench/webapp_pages.py --files 1000   # a quicker run

Starts `bytereview up`, uploads one ZIP of N small PDFs (analysed and unpacked by ingest), then
opens in Debian's Chromium: the dashboard, the configure page's file tree (virtualised, paged
from the API) while the job is ready, and after extraction the results table. Prints, for each,
the time from navigation to the first usable content and, for the tree, to every file listed.
Asserts nothing (target: under 1 s each to usable).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from playwright.sync_api import Page, sync_playwright

from bytereview.core.settings import DEV_TOKEN
from tests.e2e.conftest import launched
from tests.pdfs import text_pdf
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


def archive(files: int, folders: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for i in range(files):
            body = text_pdf([f"Invoice Number: INV-{i}", f"Total Due: ${i}.00"])
            out.writestr(f"batch/folder-{i % folders:03d}/invoice-{i:05d}.pdf", body)
    return buffer.getvalue()


def wait_status(api: httpx.Client, job: str, states: set[str]) -> str:
    while True:
        status: str = api.get(f"/v1/{job}").json()["status"]
        if status in states:
            return status
        time.sleep(1)


def timed(page: Page, url: str, ready: str) -> float:
    """Seconds from navigation until the selector `ready` is visible."""
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(ready, state="visible", timeout=120_000)
    return time.perf_counter() - started


def run(url: str, files: int, folders: int) -> None:
    body = archive(files, folders)
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as api:
        created = api.post(
            "/v1/jobs",
            json={"displayName": "bench", "files": [{"path": "batch.zip", "sizeBytes": len(body)}]},
        ).json()
        job = created["job"]["name"]
        httpx.put(created["uploadTargets"][0]["url"], content=body, timeout=300)
        started = time.perf_counter()
        api.post(f"/v1/{job}:finalizeUploads", json={})
        wait_status(api, job, {"READY", "FAILED"})
        print(f"analysis of {files} files: {time.perf_counter() - started:.1f} s", flush=True)

        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("text=Jobs")
            jid = job.split("/")[1]
            rows = {
                "dashboard": timed(page, f"{url}/app/jobs", "table.jobs tbody tr"),
                "file tree (first rows)": timed(
                    page, f"{url}/app/jobs/{jid}/configure", ".virtual-rows li"
                ),
            }
            started = time.perf_counter()
            # The count comes from the server at once; the tree is complete when not busy.
            page.wait_for_selector(f"text={files} files ready", timeout=300_000)
            page.wait_for_selector(
                '[aria-label="Files and folders"][aria-busy="false"]', timeout=300_000
            )
            rows["file tree (every file listed)"] = (
                time.perf_counter() - started + rows["file tree (first rows)"]
            )
            api.post(
                f"/v1/{job}:configure",
                json={"fields": [{"name": "invoice_number", "dataType": "text"}]},
            )
            api.post(f"/v1/{job}:start", json={})
            started = time.perf_counter()
            wait_status(api, job, {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED"})
            print(f"extraction of {files} files: {time.perf_counter() - started:.1f} s")
            rows["results table"] = timed(
                page, f"{url}/app/jobs/{jid}/results", "table.results button.value"
            )
            browser.close()
    print(f"\n{'page':32} time to usable ({files} files, {files} results)")
    for name, seconds in rows.items():
        print(f"{name:32} {seconds * 1000:8.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--folders", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, launched(Path(data)) as platform:
        run(platform.url, args.files, args.folders)


if __name__ == "__main__":
    main()
