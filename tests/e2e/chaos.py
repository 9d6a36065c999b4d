"""Chaos helpers shared by tests/e2e/test_chaos.py and bench/chaos.py.

A job of invoices goes in over REST; its outcome is counted file by file from the platform's
own answers: results per file (exactly one each), failed files and tasks, attempts, and,
where the offline extractor reads the documents, whether each value is the file's own.
Every REST call tolerates the gateway or the jobs service being down for a while: the point
is to watch the platform recover, not to fail on the first refused connection.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.archives import zip_bytes
from tests.e2e.conftest import Platform
from tests.pdfs import text_pdf

TERMINAL = {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELLED"}
FIELDS = [{"name": "invoice_number", "dataType": "text", "instruction": "The invoice number"}]


@dataclass(frozen=True)
class Invoices:
    """`loose` PDFs uploaded one by one and `zipped` more inside one ZIP archive."""

    loose: int
    zipped: int = 0

    def paths(self) -> dict[str, str]:
        """Each PDF's original path (as the platform reports it) to its invoice number."""
        out = {f"loose/{i}.pdf": f"INV-{i}" for i in range(self.loose)}
        out |= {f"batch.zip/zipped/{i}.pdf": f"INV-Z{i}" for i in range(self.zipped)}
        return out

    @property
    def total(self) -> int:
        return self.loose + self.zipped


def invoice(number: str) -> bytes:
    return text_pdf([f"Invoice Number: {number}", "Total: 10.00"])


def call(client: httpx.Client, method: str, url: str, timeout: float = 120, **kw: Any) -> Any:
    """A REST call retried while the platform is (partly) down; its JSON body."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            reply = client.request(method, url, **kw)
            if reply.status_code < 500:
                assert reply.status_code == 200, f"{method} {url}: {reply.text}"
                return reply.json()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{method} {url} failed for {timeout}s")
        time.sleep(0.5)


def submit(client: httpx.Client, invoices: Invoices) -> str:
    """Creates the job, uploads every file and finalizes: the job is analysing."""
    uploads: dict[str, bytes] = {
        f"loose/{i}.pdf": invoice(f"INV-{i}") for i in range(invoices.loose)
    }
    if invoices.zipped:
        entries = {f"zipped/{i}.pdf": invoice(f"INV-Z{i}") for i in range(invoices.zipped)}
        uploads["batch.zip"] = zip_bytes(entries)
    declared = [{"path": path, "sizeBytes": len(data)} for path, data in uploads.items()]
    created = call(client, "POST", "/v1/jobs", json={"displayName": "chaos", "files": declared})
    for target in created["uploadTargets"]:
        data = uploads[target["path"]]
        put = httpx.put(target["url"], content=data, headers=target.get("headers"), timeout=60)
        assert put.status_code == 200, put.text
    job = str(created["job"]["name"])
    call(client, "POST", f"/v1/{job}:finalizeUploads", json={})
    return job


def counters(client: httpx.Client, job: str) -> dict[str, int]:
    body = call(client, "GET", f"/v1/{job}")
    out = {k: int(v) for k, v in body.get("counters", {}).items()}
    out["_status"] = 0 if body["status"] not in TERMINAL else 1
    return out


def wait_for(client: httpx.Client, job: str, key: str, at_least: int, timeout: float = 120) -> None:
    """Until the job's counter `key` (`tasksSucceeded`, `filesTotal` ...) reaches `at_least`."""
    deadline = time.monotonic() + timeout
    while counters(client, job).get(key, 0) < at_least:
        assert time.monotonic() < deadline, f"{key} never reached {at_least}"
        time.sleep(0.1)


def status(client: httpx.Client, job: str) -> str:
    return str(call(client, "GET", f"/v1/{job}")["status"])


def start_when_ready(client: httpx.Client, job: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while (now := status(client, job)) != "READY":
        assert now not in TERMINAL, f"the job ended {now} before extraction"
        assert time.monotonic() < deadline, f"the job is still {now}"
        time.sleep(0.2)
    call(client, "POST", f"/v1/{job}:configure", json={"fields": FIELDS})
    call(client, "POST", f"/v1/{job}:start", json={})


def wait_end(client: httpx.Client, job: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while (now := status(client, job)) not in TERMINAL:
        if time.monotonic() > deadline:
            return now
        time.sleep(0.2)
    return now


def listed(client: httpx.Client, url: str, key: str) -> Iterator[dict[str, Any]]:
    token = ""
    while True:
        page = call(client, "GET", url, params={"pageSize": 1000, "pageToken": token})
        yield from page.get(key, [])
        token = page.get("nextPageToken", "")
        if not token:
            return


@dataclass(frozen=True)
class Outcome:
    status: str
    files: int  # extractable files the job has
    results: int
    duplicates: int  # results beyond the first for a file
    missing: int  # extractable files without a result
    failed: int  # files and tasks FAILED
    wrong: int  # results whose value is not their file's own (checked when `expected` is given)
    max_attempts: int

    @property
    def exact(self) -> bool:
        """Every file has exactly one result and nothing failed."""
        return self.duplicates == self.missing == self.failed == self.wrong == 0


def outcome(client: httpx.Client, job: str, expected: dict[str, str] | None = None) -> Outcome:
    files = list(listed(client, f"/v1/{job}/files", "files"))
    tasks = list(listed(client, f"/v1/{job}/tasks", "tasks"))
    results = list(listed(client, f"/v1/{job}/results", "results"))
    extractable = {f["name"] for f in files if f["status"] == "READY"}
    per_file = Counter(name for r in results for name in r.get("files", []))
    wrong = 0
    if expected is not None:
        for r in results:
            for path in r.get("filePaths", []):
                wrong += r.get("values", {}).get("invoice_number") != expected.get(path)
    return Outcome(
        status=status(client, job),
        files=len(extractable),
        results=len(results),
        duplicates=sum(n - 1 for n in per_file.values() if n > 1),
        missing=len(extractable - set(per_file)),
        failed=sum(f["status"] == "FAILED" for f in files)
        + sum(t["status"] == "FAILED" for t in tasks),
        wrong=wrong,
        max_attempts=max((int(t.get("attempts", 0)) for t in tasks), default=0),
    )


def kill(platform: Platform, prefix: str, sig: signal.Signals = signal.SIGKILL) -> list[str]:
    """Sends `sig` to every child named `prefix` or `prefix-N`; the names it hit."""
    hit = []
    for name, pid in platform.children().items():
        if name == prefix or name.startswith(f"{prefix}-"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                hit.append(name)
    assert hit, f"no {prefix} process in {platform.children()}"
    return hit
