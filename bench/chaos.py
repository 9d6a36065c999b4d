"""Chaos, the full matrix: each component killed mid-job under `bytereview up`, NATS and
PostgreSQL restarted mid-job, workers SIGTERMed, the launcher killed and `up` started again.

    .venv/bin/python bench/chaos.py [--files 1000] [--sqlite] [--case NAME ...] [--timeout 600]

Each case runs on a platform of its own (`bytereview up`, real NATS, PostgreSQL started like
tests/servers.py does unless --sqlite, the offline extractor reading the PDFs' text), with one
job of `--files` invoices: 5 % uploaded loose, the rest in one ZIP. The blow lands mid-unpacking
(once a tenth of the archive's entries are registered) or mid-extraction (once a tenth of the
tasks have succeeded). Asserts nothing; prints one row per case:

- files / results: invoices sent, results the job has;
- dup: results beyond the first for a file; missing: extractable files without a result;
  failed: files and tasks FAILED; wrong: a result whose invoice number is not its file's own;
  max att: the most attempts any task took;
- status: the job's final status (or the status it was stuck in at --timeout);
- total s: finalize to the job's end; recovery s: what the blow cost, i.e. the time from the
  blow to the end minus the undisturbed run's time from the same point (the baseline case).

A case is "ok" when every file has exactly one right result and nothing failed. Figures on a
shared 2-core machine move by several seconds between runs; the pattern is what counts.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bytereview.core.settings import DEV_TOKEN
from tests.e2e.chaos import (
    Invoices,
    Outcome,
    kill,
    outcome,
    start_when_ready,
    submit,
    wait_end,
    wait_for,
)
from tests.e2e.conftest import Platform, launched
from tests.servers import PostgresServer, _as_postgres, postgres_bin, postgres_server

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


@dataclass
class Run:
    """One case in flight: its platform (replaced when the launcher is killed) and database."""

    platform: Platform
    data_dir: Path
    env: dict[str, str]
    postgres: PostgresServer | None
    stack: ExitStack
    notes: list[str] = field(default_factory=list)


Blow = Callable[[Run], None]


def kill_all(component: str, sig: signal.Signals = signal.SIGKILL) -> Blow:
    def blow(run: Run) -> None:
        run.notes.append("hit " + ",".join(kill(run.platform, component, sig)))

    return blow


def pg_ctl(run: Run, *args: str) -> None:
    assert run.postgres is not None
    root = run.postgres.socket_dir.parent  # tests/servers.py: root/{data,sock,log}
    command = [*_as_postgres(), str(postgres_bin() / "pg_ctl"), "-D", str(root / "data")]
    subprocess.run(
        [*command, "-l", str(root / "log"), "-w", "-t", "60", *args],
        check=True,
        capture_output=True,
    )


def pg_restart(run: Run) -> None:
    started = time.monotonic()
    pg_ctl(run, "-m", "fast", "restart")
    run.notes.append(f"postgres down {time.monotonic() - started:.1f}s")


def pg_down(seconds: float) -> Blow:
    def blow(run: Run) -> None:
        pg_ctl(run, "-m", "fast", "stop")
        time.sleep(seconds)
        pg_ctl(run, "restart")  # starts it again with the options it last ran with

    return blow


def relaunch(run: Run) -> None:
    """kill -9 of the launcher; once its children are gone, `up` again on the same data dir."""
    old = run.platform
    children = old.children()
    old.process.kill()
    old.process.wait()
    deadline = time.monotonic() + 60
    while old.children() and time.monotonic() < deadline:
        time.sleep(0.1)
    left = old.children()
    run.notes.append(f"{len(children)} children, {len(left)} left after the kill")
    run.platform = run.stack.enter_context(launched(run.data_dir, run.env))


@dataclass(frozen=True)
class Case:
    name: str
    phase: str  # "unpack" or "extract": when the blow lands
    blow: Blow | None
    postgres_only: bool = False


CASES = [
    Case("baseline", "extract", None),
    Case("kill -9 extract", "extract", kill_all("extract")),
    Case("kill -9 ingest", "unpack", kill_all("ingest")),
    Case("kill -9 jobs (unpacking)", "unpack", kill_all("jobs")),
    Case("kill -9 jobs", "extract", kill_all("jobs")),
    Case("kill -9 gateway", "extract", kill_all("gateway")),
    Case("kill -9 nats (unpacking)", "unpack", kill_all("nats")),
    Case("kill -9 nats", "extract", kill_all("nats")),
    Case("SIGTERM extract", "extract", kill_all("extract", signal.SIGTERM)),
    Case("SIGTERM ingest", "unpack", kill_all("ingest", signal.SIGTERM)),
    Case("restart postgres (unpacking)", "unpack", pg_restart, postgres_only=True),
    Case("restart postgres", "extract", pg_restart, postgres_only=True),
    Case("postgres down 10 s", "extract", pg_down(10), postgres_only=True),
    Case("kill -9 launcher, up again", "extract", relaunch),
]


@dataclass
class Row:
    case: str
    invoices: int
    outcome: Outcome | None = None
    total: float = 0.0
    after_blow: float = 0.0
    recovery: float | None = None
    notes: list[str] = field(default_factory=list)


def run_case(
    case: Case, invoices: Invoices, postgres: PostgresServer | None, timeout: float, work: Path
) -> tuple[Row, dict[str, float]]:
    """The row, and when each phase's blow point was reached (seconds after finalize)."""
    env: dict[str, str] = {}
    if postgres is not None:
        name = "chaos_" + "".join(c if c.isalnum() else "_" for c in case.name)
        env["BYTEREVIEW_DATABASE_URL"] = postgres.create_database(f"{name}_{time.time_ns()}")
    data_dir = Path(tempfile.mkdtemp(dir=work, prefix="case-"))
    row = Row(case.name, invoices.total)
    marks: dict[str, float] = {}
    with ExitStack() as stack:
        run = Run(stack.enter_context(launched(data_dir, env)), data_dir, env, postgres, stack)
        client = stack.enter_context(httpx.Client(headers=AUTH, timeout=30))
        client.base_url = httpx.URL(run.platform.url)
        job = submit(client, invoices)
        started = time.monotonic()
        blown_at = started
        wait_for(client, job, "filesTotal", invoices.loose + 1 + invoices.zipped // 10, timeout)
        marks["unpack"] = time.monotonic() - started
        if case.phase == "unpack" and case.blow is not None:
            blown_at = time.monotonic()
            case.blow(run)
            client.base_url = httpx.URL(run.platform.url)
        start_when_ready(client, job, timeout)
        wait_for(client, job, "tasksSucceeded", max(1, invoices.total // 10), timeout)
        marks["extract"] = time.monotonic() - started
        if case.phase == "extract" and case.blow is not None:
            blown_at = time.monotonic()
            case.blow(run)
            client.base_url = httpx.URL(run.platform.url)
        wait_end(client, job, timeout)
        ended = time.monotonic()
        row.outcome = outcome(client, job, invoices.paths())
        row.total = ended - started
        row.after_blow = ended - (
            blown_at if case.blow is not None else started + marks[case.phase]
        )
        row.notes = run.notes
        if not row.outcome.exact or row.outcome.status != "COMPLETED":
            log = work / f"{data_dir.name}.log"
            log.write_text("".join(run.platform.lines))
            row.notes.append(f"log: {log}")
    return row, marks


def table(rows: list[Row]) -> str:
    head = "| case | files | results | dup | missing | failed | wrong | max att | status | total s | recovery s | ok | notes |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        o = r.outcome
        if o is None:
            lines.append(
                f"| {r.case} | {r.invoices} | - | - | - | - | - | - | not run | - | - | - | {'; '.join(r.notes)} |"
            )
            continue
        ok = "yes" if o.exact and o.status == "COMPLETED" and o.results == r.invoices else "NO"
        recovery = "-" if r.recovery is None else f"{r.recovery:.1f}"
        lines.append(
            f"| {r.case} | {r.invoices} | {o.results} | {o.duplicates} | {o.missing} | {o.failed} "
            f"| {o.wrong} | {o.max_attempts} | {o.status} | {r.total:.1f} | {recovery} | {ok} "
            f"| {'; '.join(r.notes)} |"
        )
    return "\n".join(lines)


@contextmanager
def database(use_sqlite: bool) -> Iterator[PostgresServer | None]:
    if use_sqlite:
        yield None
        return
    with postgres_server() as server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="invoices per job (default 1000)")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--case", action="append", default=[], help="run only these (by name)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a job may take")
    args = parser.parse_args()
    loose = max(1, args.files // 20)
    invoices = Invoices(loose=loose, zipped=args.files - loose)
    chosen = [c for c in CASES if not args.case or c.name in args.case or c.name == "baseline"]
    work = Path(tempfile.mkdtemp(prefix="br-chaos-"))
    rows: list[Row] = []
    baseline: dict[str, float] = {}
    baseline_total = 0.0
    with database(args.sqlite) as postgres:
        for case in chosen:
            if case.postgres_only and postgres is None:
                rows.append(
                    Row(case.name, invoices.total, notes=["needs PostgreSQL (no --sqlite)"])
                )
                continue
            print(f"# {case.name} ...", flush=True)
            try:
                row, marks = run_case(case, invoices, postgres, args.timeout, work)
            except (AssertionError, TimeoutError) as exc:
                rows.append(Row(case.name, invoices.total, notes=[f"aborted: {exc}"[:200]]))
                print(table(rows[-1:]), flush=True)
                continue
            if case.blow is None:
                baseline = marks
                baseline_total = row.total
            elif baseline:
                undisturbed = baseline_total - baseline[case.phase]
                row.recovery = row.after_blow - undisturbed
            rows.append(row)
            print(table(rows[-1:]), flush=True)
    print()
    print(
        f"{invoices.total} invoices per job ({invoices.loose} loose, {invoices.zipped} in a ZIP), "
        f"{'SQLite' if postgres is None else 'PostgreSQL 15'}; logs of failed cases in {work}"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
