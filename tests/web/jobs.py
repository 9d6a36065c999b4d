"""Jobs made over REST for browser tests that start from a given step of the flow."""

from __future__ import annotations

import time

import httpx

from tests.archives import zip_bytes
from tests.pdfs import text_pdf


def wait_for(api: httpx.Client, job: str, states: set[str]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if api.get(f"/v1/{job}").json()["status"] in states:
            return
        time.sleep(0.2)
    raise AssertionError(f"{job} never reached {states}")


def ready_job(api: httpx.Client, name: str) -> str:
    files = {
        "invoices/a.pdf": text_pdf(["Invoice Number: A-1", "Total Due: $12.00"]),
        "invoices/more.zip": zip_bytes(
            {"march/b.pdf": text_pdf(["Invoice Number: B-2", "Total Due: $8.00"])}
        ),
    }
    created = api.post(
        "/v1/jobs",
        json={
            "displayName": name,
            "files": [{"path": p, "sizeBytes": len(b)} for p, b in files.items()],
        },
    ).json()
    for target in created["uploadTargets"]:
        assert httpx.put(target["url"], content=files[target["path"]]).status_code == 200
    job: str = created["job"]["name"]
    api.post(f"/v1/{job}:finalizeUploads", json={})
    wait_for(api, job, {"READY"})
    return job
