"""The whole platform as `bytereview up` runs it: real processes, the thin path over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bytereview.core.settings import DEV_TOKEN
from tests.pdfs import text_pdf

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}
DATA_DIR: list[str] = []


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    data_dir = tmp_path_factory.mktemp("platform")
    DATA_DIR[:] = [str(data_dir.resolve())]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bytereview.cli", "up", "--data-dir", str(data_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    url = ""
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"ByteReview is up at (http://\S+)", line)
        if found:
            url = found.group(1)
            break
    assert url, "the platform did not come up:\n" + "".join(lines[-40:])
    assert _pids_with_env(f"BYTEREVIEW_DATA_DIR={DATA_DIR[0]}".encode()), "children not found"
    # Keep draining output so the children never block on a full pipe.
    import threading

    threading.Thread(target=lambda: [lines.append(x) for x in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    yield url, process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def test_thin_path_over_http(platform: tuple[str, subprocess.Popen[str]], tmp_path: Path) -> None:
    url, _ = platform
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
        status = _wait(client, job, {"READY"})
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
        assert _wait(client, job, {"COMPLETED", "FAILED", "PARTIALLY_COMPLETED"}) == "COMPLETED"
        results = client.get(f"/v1/{job}/results").json()["results"]
        assert results[0]["values"] == {"invoice_number": "INV-7", "total": 1234.5}
        export = client.get(f"/v1/{job}:export", params={"format": "csv"})
        assert export.status_code == 200
        assert "INV-7" in export.text
        assert export.headers["content-type"].startswith("text/csv")


def test_clean_shutdown(platform: tuple[str, subprocess.Popen[str]]) -> None:
    url, process = platform
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)
    # No child outlived the launcher: none still carries the platform's data dir in its env.
    marker = f"BYTEREVIEW_DATA_DIR={DATA_DIR[0]}".encode()
    assert [pid for pid in _pids_with_env(marker)] == []


def _pids_with_env(marker: bytes) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(proc.name))
    return found


def _wait(client: httpx.Client, job: str, states: set[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = client.get(f"/v1/{job}").json()["status"]
        if status in states:
            return status
        time.sleep(0.2)
    return status
