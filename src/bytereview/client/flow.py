"""`bytereview extract FILES...`: the whole flow over REST, with progress bars.

create job -> upload to signed URLs -> finalize -> wait for analysis (archives unpack here)
-> configure fields or template -> start -> wait for extraction -> export to a file.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from bytereview.client.api import Api, ClientError

TERMINAL = {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELLED"}
FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".json": "json"}


class Progress:
    """One line that redraws itself: `label [#####-----] 50% 5/10`."""

    def __init__(self, label: str, total: int, stream: TextIO = sys.stderr, unit: str = "") -> None:
        self.label, self.total, self.done = label, max(total, 0), 0
        self._stream, self._unit, self._last = stream, unit, ""
        # Redrawing needs a terminal; into a log or a pipe only the final line is written.
        self._live = stream.isatty()

    def update(self, done: int) -> None:
        self.done = done
        if self._live:
            self._draw()

    def _draw(self) -> None:
        share = self.done / self.total if self.total else 1.0
        bar = "#" * int(share * 30)
        counts = f"{self._fmt(self.done)}/{self._fmt(self.total)}"
        text = f"\r{self.label:<11} [{bar:<30}] {share:4.0%} {counts}"
        if text != self._last:
            self._stream.write(text)
            self._stream.flush()
            self._last = text

    def advance(self, step: int) -> None:
        self.update(self.done + step)

    def say(self, line: str) -> None:
        """A line of its own above the bar (the bar is drawn again below it)."""
        if self._live:
            self._stream.write("\r\033[K")
        self._stream.write(line + "\n")
        self._stream.flush()
        if self._live:
            self._last = ""
            self._draw()

    def finish(self) -> None:
        self.done = max(self.done, self.total)
        self._draw()
        self._stream.write("\n")
        self._stream.flush()

    def _fmt(self, n: int) -> str:
        if self._unit != "B":
            return str(n)
        for unit in ("B", "KiB", "MiB", "GiB"):
            if n < 1024 or unit == "GiB":
                return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
            n = n / 1024  # type: ignore[assignment]
        return str(n)


@dataclass(frozen=True)
class Upload:
    local: Path
    path: str  # as the job shows it; folders group files in combined mode
    size: int


def collect(inputs: list[str]) -> list[Upload]:
    """Files as given; directories walked, keeping their relative folders.

    Empty files found in a folder are left out (said on stderr): the platform refuses a job
    declaring one, and a folder's `.gitkeep` failed the whole command. A folder named
    through `..` is named by its own name: `../march/x.pdf` was refused (a path must not
    climb out of the job)."""
    out: list[Upload] = []
    empty: list[str] = []
    for raw in inputs:
        given = Path(raw)
        if given.is_dir():
            base = Path(os.path.abspath(given))
            for child in sorted(p for p in given.rglob("*") if p.is_file()):
                rel = child.relative_to(given.parent).as_posix()
                if ".." in PurePosixPath(rel).parts:
                    rel = Path(os.path.abspath(child)).relative_to(base.parent).as_posix()
                size = child.stat().st_size
                if not size:
                    empty.append(rel)
                    continue
                out.append(Upload(child, rel, size))
        elif given.is_file():
            if not given.stat().st_size:
                raise ClientError(f"{raw}: the file is empty")
            out.append(Upload(given, given.name, given.stat().st_size))
        else:
            raise ClientError(f"{raw}: no such file or directory")
    if empty:
        print(f"left out {len(empty)} empty file(s): {', '.join(empty[:5])}", file=sys.stderr)
    if not out:
        raise ClientError("no files to extract from")
    seen: set[str] = set()
    for upload in out:
        if upload.path in seen:
            raise ClientError(f"two inputs are both called {upload.path}; pass their folders")
        seen.add(upload.path)
    return out


def parse_field(spec: str) -> dict[str, str]:
    """`name:type[:instruction]`; the instruction may itself contain colons."""
    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
        raise ClientError(f"--field {spec!r}: expected name:type[:instruction]")
    field = {"name": parts[0].strip(), "dataType": parts[1].strip()}
    if len(parts) == 3 and parts[2].strip():
        field["instruction"] = parts[2].strip()
    return field


def find_template(api: Api, wanted: str) -> str:
    """A template's resource name from its display name or its name."""
    page = ""
    while True:
        listed = api.call("GET", "/v1/templates", pageSize=100, pageToken=page)
        for template in listed.get("templates", []):
            if wanted in (template["name"], template.get("displayName")):
                return str(template["name"])
        page = listed.get("nextPageToken", "")
        if not page:
            raise ClientError(f"no template called {wanted!r} (see `bytereview templates list`)")


def wait(
    api: Api, job: str, bar: Progress, *, done: Any, count: Any, poll: float, total: Any = None
) -> dict[str, Any]:
    said: list[str] = []
    while True:
        progress = api.call("GET", f"/v1/{job}/progress")
        if total is not None:
            bar.total = max(bar.total, total(progress))  # archives add their entries
        # Why the job stands still while its tasks are held (the model's service down, say),
        # each time that changes: a bar that does not move says nothing of it.
        held = [str(line) for line in progress.get("waitingOn", [])]
        if held != said:
            for line in held:
                bar.say(line)
            if said and not held:
                bar.say("No longer held; going on.")
            said = held
        bar.update(count(progress))
        if done(progress):
            bar.finish()
            return dict(progress)
        time.sleep(poll)


def check_data_types(api: Api, fields: list[dict[str, str]]) -> None:
    """Refuse unknown data types before anything is uploaded (no job is left behind)."""
    listed = api.call("GET", "/v1/dataTypes")
    known = {
        str(t.get("id") or str(t.get("name", "")).removeprefix("dataTypes/"))
        for t in listed.get("dataTypes", [])
        if isinstance(t, dict)
    }
    for field in fields:
        if field["dataType"] not in known:
            raise ClientError(
                f"--field {field['name']}: unknown data type {field['dataType']!r}; "
                f"use one of {', '.join(sorted(known))}"
            )


def check_out(out: Path) -> None:
    """Refuse an --out nobody can write before anything is uploaded: it was found only once
    the whole job had run, with a traceback, and its results were never written."""
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ClientError(f"--out {out}: there is no folder {folder}")
    if (
        out.is_dir()
        or not os.access(folder, os.W_OK)
        or (out.exists() and not os.access(out, os.W_OK))
    ):
        raise ClientError(f"--out {out}: cannot write there")


def discard(api: Api, job: str) -> str:
    """Delete a job the command created but did not start (interrupted, or the platform
    refused its upload or its fields): it would stay PENDING_UPLOAD or READY for good, and
    `cleanup abandoned` removes only the former, a day later. The line to tell the user."""
    try:
        api.call("DELETE", f"/v1/{job}")
    except ClientError as exc:
        return (
            f"{job} was not started and could not be removed ({exc}); "
            f"remove it with `bytereview jobs delete {job}`"
        )
    return f"{job} was not started and has been removed"


def run_extract(
    api: Api,
    inputs: list[str],
    *,
    fields: list[str],
    template: str,
    combined: bool,
    out: Path,
    poll: float = 0.5,
) -> int:
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ClientError(f"--out {out}: use a .csv, .xlsx or .json file name")
    if bool(fields) == bool(template):
        raise ClientError(
            "give either --template NAME or one or more --field name:type[:instruction]"
        )
    check_out(out)
    wanted_fields = [parse_field(f) for f in fields]
    if wanted_fields:
        check_data_types(api, wanted_fields)
    template_name = find_template(api, template) if template else ""
    uploads = collect(inputs)

    created = api.call(
        "POST",
        "/v1/jobs",
        {
            "displayName": f"CLI: {', '.join(u.path for u in uploads[:3])}"[:200],
            "files": [{"path": u.path, "sizeBytes": str(u.size)} for u in uploads],
        },
    )
    job = created["job"]["name"]
    print(f"job {job}", file=sys.stderr)
    try:
        total = upload_and_start(
            api, job, created, uploads, wanted_fields, template_name, combined, poll
        )
    except ClientError as exc:
        raise ClientError(f"{exc}\n{discard(api, job)}") from exc
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"interrupted; {discard(api, job)}") from None
    if total is None:
        # Each file's reason, as when some fail (exit 2): the `jobs show` this pointed to
        # shows none of them, only a READY job counting failed files.
        return report_failures(
            api, job, {"status": "FAILED"}, heading="none of the files could be read:"
        )

    def finished_tasks(p: dict[str, Any]) -> int:
        c = p.get("counters", {})
        return int(c.get("tasksSucceeded", 0)) + int(c.get("tasksFailed", 0))

    final = wait(
        api,
        job,
        Progress("extraction", total),
        done=lambda p: p.get("status") in TERMINAL,
        count=finished_tasks,
        poll=poll,
    )
    size = api.download(f"/v1/{job}:export", out, format=fmt)
    print(f"{final['status'].lower()}: {out} ({size} bytes)", file=sys.stderr)
    return report_failures(api, job, final, combined=combined)


def upload_and_start(
    api: Api,
    job: str,
    created: dict[str, Any],
    uploads: list[Upload],
    fields: list[dict[str, str]],
    template_name: str,
    combined: bool,
    poll: float,
) -> int | None:
    """Upload, analyse, configure and start `job`: its number of tasks, or None when none of
    its files could be read (the job is kept for `jobs show`)."""
    by_path = {u.path: u for u in uploads}
    sent = Progress("upload", sum(u.size for u in uploads), unit="B")
    for target in created["uploadTargets"]:
        api.upload(target, by_path[target["path"]].local, sent.advance)
    sent.finish()
    api.call("POST", f"/v1/{job}:finalizeUploads", {})

    analysed = wait(
        api,
        job,
        Progress("analysis", len(uploads)),
        done=lambda p: p.get("analysisDone", False) or p.get("status") in TERMINAL,
        count=lambda p: sum(
            int(n) for s, n in p.get("filesByStatus", {}).items() if s != "PENDING"
        ),
        poll=poll,
        total=lambda p: int(p.get("counters", {}).get("filesTotal", 0)),
    )
    counters = analysed.get("counters", {})
    if not int(counters.get("filesReady", 0)):
        return None

    configure: dict[str, Any] = {
        "taskMode": "TASK_MODE_COMBINED" if combined else "TASK_MODE_INDIVIDUAL"
    }
    if template_name:
        configure["template"] = template_name
    else:
        configure["fields"] = fields
    api.call("POST", f"/v1/{job}:configure", configure)
    started = api.call("POST", f"/v1/{job}:start", {})
    return int(started.get("counters", {}).get("tasksTotal", 0))


# Task.failure: whether `jobs rerun --failed` may help (an unreadable file fails again).
_RETRY_HINTS = {
    "PERMANENT": " (will fail again as it is)",
    "EXHAUSTED": " (ran out of attempts; `jobs rerun JOB --failed` may succeed)",
}


def report_failures(
    api: Api,
    job: str,
    final: dict[str, Any],
    *,
    combined: bool = False,
    heading: str = "some files failed:",
) -> int:
    problems = []
    files = api.call("GET", f"/v1/{job}/files", pageSize=1000)
    for f in files.get("files", []):
        if f.get("status") in ("FAILED", "UNSUPPORTED"):
            problems.append(f"  file {f.get('originalPath')}: {f.get('error') or 'unreadable'}")
    tasks = api.call("GET", f"/v1/{job}/tasks", pageSize=1000)
    for t in tasks.get("tasks", []):
        if t.get("status") == "FAILED":
            hint = _RETRY_HINTS.get(t.get("failure", ""), "")
            problems.append(f"  task {t['name']}: {t.get('lastError', '')}{hint}")
    # Combined mode: a file that could not be read is left out of its folder's result.
    results = api.call("GET", f"/v1/{job}/results", pageSize=1000) if combined else {}
    for r in results.get("results", []):
        for skipped in r.get("skippedFiles", []):
            problems.append(
                f"  file {skipped.get('path')}: left out of its folder's result: "
                f"{skipped.get('reason', '')}"
            )
    if problems:
        print(heading, *problems, sep="\n", file=sys.stderr)
    return 0 if final["status"] == "COMPLETED" and not problems else 2
