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


def ready_zip_job(api: httpx.Client, name: str, count: int) -> str:
    """A ready job of `count` PDFs unpacked from one ZIP (`batch/NNN.pdf`)."""
    body = zip_bytes(
        {
            f"batch/{i:03d}.pdf": text_pdf([f"Invoice Number: Z-{i}", f"Total Due: ${i}.00"])
            for i in range(count)
        }
    )
    created = api.post(
        "/v1/jobs",
        json={"displayName": name, "files": [{"path": "batch.zip", "sizeBytes": len(body)}]},
    ).json()
    assert httpx.put(created["uploadTargets"][0]["url"], content=body).status_code == 200
    job: str = created["job"]["name"]
    api.post(f"/v1/{job}:finalizeUploads", json={})
    wait_for(api, job, {"READY"})
    return job


def finished_zip_job(api: httpx.Client, name: str, count: int, fields: list[dict[str, str]]) -> str:
    """A completed job of `count` PDFs from one ZIP (`batch.zip/batch/NNN.pdf`), `fields` extracted."""
    job = ready_zip_job(api, name, count)
    assert api.post(f"/v1/{job}:configure", json={"fields": fields}).status_code == 200
    assert api.post(f"/v1/{job}:start", json={}).status_code == 200
    wait_for(api, job, {"COMPLETED"})
    return job


def set_values(api: httpx.Client, job: str, values: dict[str, dict[str, object]]) -> None:
    """Corrects results over REST: `values` by file path (`batch.zip/batch/000.pdf`)."""
    results = api.get(f"/v1/{job}/results", params={"pageSize": 1000}).json()["results"]
    by_path = {r["filePaths"][0]: r["name"] for r in results}
    for path, fields in values.items():
        answer = api.patch(
            f"/v1/{by_path[path]}", json={"values": fields}, params={"updateMask": "values"}
        )
        assert answer.status_code == 200, answer.text
