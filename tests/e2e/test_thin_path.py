"""The whole platform as `bytereview up` runs it: real processes, the thin path over HTTP."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from bytereview.core import DEV_TOKEN
from tests.e2e.conftest import Platform, launched, pids_with_env, wait_status
from tests.pdfs import text_pdf

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


def test_thin_path_over_http(platform: Platform, tmp_path: Path) -> None:
    url = platform.url
    pdf = text_pdf(["ACME Corporation", "Invoice Number: INV-7", "Total Due: $1,234.50"])
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        created = client.post(
            "/v1/jobs",
            json={"displayName": "e2e", "files": [{"path": "inv.pdf", "sizeBytes": len(pdf)}]},
        )
        assert created.status_code == 200, created.text
        job = created.json()["job"]["name"]
        target = created.json()["uploadTargets"][0]
        put = httpx.put(target["url"], content=pdf, timeout=30)
        assert put.status_code == 200, put.text
        assert client.post(f"/v1/{job}:finalizeUploads", json={}).json()["status"] == "ANALYZING"
        status = wait_status(client, job, {"READY"})
        assert status == "READY"
        configured = client.post(
            f"/v1/{job}:configure",
            json={
                "fields": [
                    {
                        "name": "invoice_number",
                        "dataType": "text",
                        "instruction": "The invoice number",
                    },
                    {"name": "total", "dataType": "currency"},
                ]
            },
        )
        assert configured.status_code == 200, configured.text
        assert client.post(f"/v1/{job}:start", json={}).status_code == 200
        assert (
            wait_status(client, job, {"COMPLETED", "FAILED", "PARTIALLY_COMPLETED"}) == "COMPLETED"
        )
        results = client.get(f"/v1/{job}/results").json()["results"]
        assert results[0]["values"] == {"invoice_number": "INV-7", "total": "1234.50"}
        export = client.get(f"/v1/{job}:export", params={"format": "csv"})
        assert export.status_code == 200
        assert "INV-7" in export.text
        assert export.headers["content-type"].startswith("text/csv")


def test_clean_shutdown(tmp_path: Path) -> None:
    with launched(tmp_path / "data") as platform:
        assert pids_with_env(platform.marker), "children not found"
        platform.process.send_signal(signal.SIGINT)
        assert platform.process.wait(timeout=90) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{platform.url}/healthz", timeout=2)
        # No child outlived the launcher: none still carries the platform's data dir in its env.
        assert pids_with_env(platform.marker) == []
