"""A long schemathesis run against `bytereview up`: what the suite's runs do at 10 examples
per operation, at many more, and on real resources too.

    .venv/bin/python bench/schemathesis_long.py                      # 150 examples, SQLite
    .venv/bin/python bench/schemathesis_long.py --postgres --max-examples 300
    .venv/bin/python bench/schemathesis_long.py --only resources     # one of the runs

Three runs, every check each (tests/e2e/test_schemathesis.py's command and hooks):
- `generated`: examples, coverage and fuzzing on every operation, ids generated (mostly
  404s: what the document says of malformed requests);
- `resources`: coverage and fuzzing on the operations that take an existing job, file,
  result or template, given real ids (tests/e2e/test_schemathesis_resources.py's list);
- `stateful`: the linked operations chained (create a job, then get, configure, start...).
Prints, per run: cases generated, failures per schemathesis check, server errors (5xx)
seen, and the time taken. Asserts nothing; the report directories are kept.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bytereview.core import DEV_TOKEN
from tests.e2e.conftest import launched
from tests.e2e.test_schemathesis_resources import OPERATIONS, _resources
from tests.servers import postgres_server

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ROOT / "tests" / "e2e" / "schemathesis_hooks.py"


@contextmanager
def platform(data_dir: Path, postgres: bool) -> Iterator[str]:
    if not postgres:
        with launched(data_dir) as up:
            yield up.url
        return
    with postgres_server() as server:
        url = server.create_database("bench_schemathesis")
        with launched(data_dir, {"BYTEREVIEW_DATABASE_URL": url}) as up:
            yield up.url


def run(url: str, report: Path, args: list[str], config: str = "") -> tuple[str, float]:
    report.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).parent / "schemathesis")]
    if config:
        (report / "schemathesis.toml").write_text(config)
        command += ["--config-file", str(report / "schemathesis.toml")]
    command += [
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--request-timeout",
        "20",
        "--header",
        f"Authorization: Bearer {DEV_TOKEN}",
        "--report-dir",
        str(report),
        *args,
    ]
    started = time.monotonic()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    (report / "output.txt").write_text(done.stdout + done.stderr)
    return done.stdout, time.monotonic() - started


def figures(name: str, output: str, seconds: float) -> None:
    summary = output.rsplit("SUMMARY", 1)[-1]
    cases = re.search(r"(\d+) generated", summary)
    failures = re.findall(r"❌ (ST\d+ [^:\n]+): (\d+)", summary)
    server_errors = output.count("Server error")
    print(f"{name:10s} {seconds:7.1f} s  cases {cases.group(1) if cases else '?':>6s}", end="")
    print(f"  5xx {server_errors}  failures {sum(int(n) for _, n in failures)}")
    for check, count in failures:
        print(f"    {count:>4s}  {check}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--max-examples", type=int, default=150)
    parser.add_argument("--postgres", action="store_true", help="jobs on PostgreSQL")
    parser.add_argument("--only", choices=["generated", "resources", "stateful"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-schemathesis-"))
    examples = ["--max-examples", str(args.max_examples)]
    with platform(work / "platform", args.postgres) as url:
        print(
            f"platform at {url} ({'PostgreSQL' if args.postgres else 'SQLite'}); reports in {work}"
        )
        if args.only in (None, "generated"):
            phases = ["--phases", "examples,coverage,fuzzing", *examples]
            figures("generated", *run(url, work / "generated", phases))
        if args.only in (None, "resources"):
            ids = _resources(url)
            config = "[parameters]\n" + "".join(f'"path.{k}" = "{v}"\n' for k, v in ids.items())
            ops = [a for op in OPERATIONS for a in ("--include-operation-id", op)]
            phases = ["--phases", "coverage,fuzzing", *examples, *ops]
            figures("resources", *run(url, work / "resources", phases, config))
        if args.only in (None, "stateful"):
            config = "[phases.stateful.inference]\nalgorithms = []\n"
            phases = [
                "--phases",
                "stateful",
                "--max-examples",
                str(max(15, args.max_examples // 5)),
            ]
            figures("stateful", *run(url, work / "stateful", phases, config))


if __name__ == "__main__":
    main()
