"""One big job end to end on PostgreSQL: every step's time, its slowest request, and each
process's peak memory after it.

    .venv/bin/python bench/big_job.py                      # a ZIP of 100,000 tiny PNGs
    .venv/bin/python bench/big_job.py --cancel-after 60    # cancel after a minute of extraction
    .venv/bin/python bench/big_job.py --files 2000 --kind pdf   # one-page PDFs
    .venv/bin/python bench/big_job.py --declared --files 2000   # files declared one by one

Starts PostgreSQL 15 (tests/servers.py, as the suite does), the Gemini stand-in answering at
once, and `bytereview up` on that database with the job and archive limits raised to the
job's size and one worker process per pool (so each process's memory can be read). Then over
REST: create, upload, finalize, analysis (progress polled), configure, start, completion
(progress polled), ListFiles and ListResults to the last page (keyset tokens), and the CSV,
JSON and XLSX exports streamed to /dev/null.

Prints, per step: its wall time, how many requests it made and the slowest of them (target:
under 1 s each), and the peak RSS (VmHWM) of every process so far, so growth with the job's
size shows. Asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bytereview.core import DEV_TOKEN
from tests.e2e.conftest import Platform, launched
from tests.gemini_standin import API_KEY, GeminiStandIn, Reply, RunningStandIn
from tests.pdfs import text_pdf
from tests.servers import postgres_server

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}
FINAL = {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELLED"}
OPEN = {"QUEUED", "RUNNING"}
MIB = 1024 * 1024
ANSWER = {"invoice_number": "A-1", "total": "10.00"}


@dataclass
class Step:
    name: str
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    requests: int = 0
    slowest: float = 0.0
    slowest_what: str = ""
    note: str = ""


class TimedClient:
    """An httpx client that charges every request's time to the current step."""

    def __init__(self, client: httpx.Client) -> None:
        self.http = client
        self.step = Step("")

    def call(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        began = time.monotonic()
        response = self.http.request(method, url, **kwargs)  # type: ignore[arg-type]
        self._charge(time.monotonic() - began, f"{method} {url.split('?')[0]}")
        if response.status_code >= 400:
            raise SystemExit(f"{method} {url}: {response.status_code} {response.text[:500]}")
        return response

    def _charge(self, took: float, what: str) -> None:
        self.step.requests += 1
        if took > self.step.slowest:
            self.step.slowest, self.step.slowest_what = took, what

    @contextmanager
    def stream(self, url: str, **kwargs: object) -> Iterator[httpx.Response]:
        """A streamed GET: the request's time is the time to its headers (first chunk)."""
        began = time.monotonic()
        with self.http.stream("GET", url, **kwargs) as response:  # type: ignore[arg-type]
            self._charge(time.monotonic() - began, f"GET {url.split('?')[0]} (headers)")
            if response.status_code >= 400:
                response.read()
                raise SystemExit(f"GET {url}: {response.status_code} {response.text[:500]}")
            yield response


def peak_rss(platform: Platform) -> dict[str, int]:
    """VmHWM (peak resident set) of each live process of the platform, in bytes."""
    found = {}
    for name, pid in platform.children().items():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    found[name] = int(line.split()[1]) * 1024
        except OSError:
            continue
    return found


def tiny_png() -> bytes:
    """A 1x1 grey PNG: an image entry the unpacker settles itself (a PDF entry gets an
    analysis message of its own, ~25 ms each on one ingest worker)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def build_zip(files: int, document: bytes, suffix: str) -> bytes:
    """`files` copies of `document` in 100 folders, stored."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for i in range(files):
            archive.writestr(f"folder{i % 100:02d}/doc{i:06d}.{suffix}", document)
    return out.getvalue()


def wait_until(client: TimedClient, job: str, done: set[str], every: float = 1.0) -> dict:  # type: ignore[type-arg]
    while True:
        progress = client.call("GET", f"/v1/{job}/progress").json()
        if progress["status"] in done:
            return progress  # type: ignore[no-any-return]
        time.sleep(every)


def page_through(client: TimedClient, url: str, key: str, size: int = 1000) -> int:
    count, token = 0, ""
    while True:
        params: dict[str, str | int] = {"pageSize": size}
        if token:
            params["pageToken"] = token
        page = client.call("GET", url, params=params).json()
        count += len(page.get(key, []))
        token = page.get("nextPageToken", "")
        if not token:
            return count


def run(platform: Platform, args: argparse.Namespace) -> list[tuple[Step, dict[str, int]]]:
    pdf = text_pdf(["Invoice Number: A-1", "Total: 10.00"])
    document = pdf if args.kind == "pdf" else tiny_png()
    steps: list[tuple[Step, dict[str, int]]] = []
    with httpx.Client(base_url=platform.url, headers=AUTH, timeout=120) as http:
        client = TimedClient(http)

        def step(name: str) -> Step:
            if client.step.name:
                client.step.seconds = time.monotonic() - client.step.started
                steps.append((client.step, peak_rss(platform)))
                print(_row(*steps[-1]), flush=True)
            client.step = Step(name)
            return client.step

        step("create")
        if args.declared:
            declared = [
                {"path": f"folder{i % 100:02d}/doc{i:06d}.pdf", "sizeBytes": len(pdf)}
                for i in range(args.files)
            ]
            created = client.call("POST", "/v1/jobs", json={"files": declared}).json()
            job = created["job"]["name"]
            step("upload")
            for target in created["uploadTargets"]:
                client.call("PUT", target["url"], content=pdf)
        else:
            archive = build_zip(args.files, document, args.kind)
            client.step.note = f"zip of {len(archive) / MIB:.0f} MiB"
            created = client.call(
                "POST",
                "/v1/jobs",
                json={"files": [{"path": "big.zip", "sizeBytes": len(archive)}]},
            ).json()
            job = created["job"]["name"]
            step("upload")
            client.call("PUT", created["uploadTargets"][0]["url"], content=archive)
            del archive
        step("finalize")
        client.call("POST", f"/v1/{job}:finalizeUploads", json={})
        step("analysis")
        progress = wait_until(client, job, {"READY", *FINAL})
        client.step.note = f"files {progress.get('filesByStatus')}"
        step("configure")
        client.call(
            "POST",
            f"/v1/{job}:configure",
            json={
                "fields": [
                    {"name": "invoice_number", "dataType": "text"},
                    {"name": "total", "dataType": "currency"},
                ]
            },
        )
        step("start")
        client.call("POST", f"/v1/{job}:start", json={})
        if args.cancel_after is None:
            step("completion")
            progress = wait_until(client, job, FINAL, every=2.0)
            client.step.note = f"{progress['status']}, tasks {progress.get('tasksByStatus')}"
        else:
            step("running")
            deadline = time.monotonic() + args.cancel_after
            while time.monotonic() < deadline:
                progress = client.call("GET", f"/v1/{job}/progress").json()
                time.sleep(2.0)
            client.step.note = f"tasks {progress.get('tasksByStatus')}"
            step("cancel")
            client.call("POST", f"/v1/{job}:cancel", json={})
            # The job is CANCELLED at once; its open tasks follow in batches (task_settling):
            # progress polled until none is open.
            step("cancel settles")
            while True:
                progress = client.call("GET", f"/v1/{job}/progress").json()
                left = {k: v for k, v in progress.get("tasksByStatus", {}).items() if k in OPEN}
                if not left:
                    break
                time.sleep(0.5)
            client.step.note = f"{progress['status']}, tasks {progress.get('tasksByStatus')}"
        step("list files")
        client.step.note = f"{page_through(client, f'/v1/{job}/files', 'files')} files"
        step("list results")
        client.step.note = f"{page_through(client, f'/v1/{job}/results', 'results')} results"
        for fmt in ("csv", "json", "xlsx"):
            step(f"export {fmt}")
            size = 0
            with client.stream(f"/v1/{job}:export", params={"format": fmt}) as response:
                for chunk in response.iter_bytes():
                    size += len(chunk)
            client.step.note = f"{size / MIB:.1f} MiB streamed"
        step("")
    return steps


def _row(s: Step, rss: dict[str, int]) -> str:
    memory = " ".join(f"{name}={value / MIB:.0f}" for name, value in sorted(rss.items()))
    return (
        f"{s.name:<13} {s.seconds:8.1f} s  {s.requests:6d} req  slowest {s.slowest:6.3f} s"
        f" ({s.slowest_what})  {s.note}\n{'':13} peak RSS MiB: {memory}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument(
        "--declared", action="store_true", help="declare the files (at most 10,000) instead"
    )
    parser.add_argument("--kind", choices=["png", "pdf"], default="png")
    parser.add_argument(
        "--cancel-after",
        type=float,
        default=None,
        help="run extraction this many seconds, then cancel (a 100,000-task completion "
        "takes hours on a small machine); lists and exports then cover what finished",
    )
    parser.add_argument("--extract-concurrency", type=int, default=32)
    args = parser.parse_args()
    limit = str(args.files + 10)
    with (
        tempfile.TemporaryDirectory() as tmp,
        postgres_server() as postgres,
        RunningStandIn(GeminiStandIn(default=lambda seen: Reply(values=ANSWER))) as gem,
    ):
        database = postgres.create_database("bigjob")
        env = {
            "BYTEREVIEW_DATABASE_URL": database,
            "BYTEREVIEW_GEMINI_API_KEY": API_KEY,
            "BYTEREVIEW_GEMINI_BASE_URL": gem.base_url,
            "BYTEREVIEW_EXTRACT_CONCURRENCY": str(args.extract_concurrency),
            "BYTEREVIEW_LOCAL_MAX_WORKERS": "1",
            "BYTEREVIEW_MAX_FILES_PER_JOB": limit,
            "BYTEREVIEW_INGEST_MAX_ENTRIES": limit,
        }
        with launched(Path(tmp) / "data", env) as platform:
            print(f"{args.files} files, {'declared' if args.declared else 'one ZIP'}; PostgreSQL")
            run(platform, args)


if __name__ == "__main__":
    main()
