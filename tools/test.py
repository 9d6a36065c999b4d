"""The test command (`make test`, run by .ci/run): installs missing servers, then checks and tests.

python tools/test.py                 # everything
python tools/test.py --only-checks   # ruff, format, mypy, buf lint, generated-code check
python tools/test.py -- -k workflow  # extra arguments go to pytest
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def step(title: str, argv: list[str]) -> None:
    print(f"\n== {title}: {' '.join(argv)}", flush=True)
    code = subprocess.run(argv, cwd=ROOT, check=False).returncode
    if code != 0:
        print(f"== {title} failed (exit {code})", flush=True)
        raise SystemExit(code or 1)


def ensure_postgres() -> None:
    """PostgreSQL server binaries, from Debian's packages, if they are not there yet."""
    if glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(
            "PostgreSQL 15 server binaries are missing; install them "
            "(Debian/Ubuntu: sudo apt-get install postgresql-15) and run again"
        )
    print("== installing PostgreSQL server binaries (apt-get)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql-15"],
        check=True,
        env=env,
    )


def ensure_chromium() -> None:
    """Debian's Chromium for the web app's browser tests (Playwright drives it; no download)."""
    if shutil.which("chromium"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(
            "Chromium is missing; install it (Debian/Ubuntu: sudo apt-get install chromium) "
            "and run again"
        )
    print("== installing Chromium (apt-get)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, env=env)


def ensure_k8s() -> None:
    """The real control plane of tests/deploy/test_k8s_real.py (../shared/k8s/setup.sh):
    built once (~5 min on 2 cores), then cached under K8S_HOME."""
    step("Kubernetes control plane", [sys.executable, "-m", "tests.deploy.k8s", "ensure"])


def checks() -> None:
    step("ruff", [str(BIN / "ruff"), "check", "."])
    step("ruff format", [str(BIN / "ruff"), "format", "--check", "."])
    step("mypy (strict)", [str(BIN / "mypy")])
    step("buf lint", [sys.executable, "tools/protos.py", "lint"])
    step("generated code is fresh", [sys.executable, "tools/protos.py", "check"])


def parallel(pytest_args: list[str]) -> list[str]:
    """pytest-xdist's options unless the caller chose their own: one test process more than
    the cores, at least three (BYTEREVIEW_TEST_WORKERS overrides): many tests wait on
    servers and timers, so one process per core left the cores half idle (2 cores, fresh
    clone: 7:03 with two, 5:58 with three). Tests that share a fixed resource lock
    it themselves (the Kubernetes control plane: tests/deploy/k8s.py); xdist's loadgroup
    does not group under pytest 9 (the group suffix never reaches the node ids)."""
    if any(a == "-n" or a.startswith(("-n", "--numprocesses", "--dist")) for a in pytest_args):
        return []
    cores = len(os.sched_getaffinity(0))
    workers = os.environ.get("BYTEREVIEW_TEST_WORKERS") or str(max(cores + 1, 3))
    return ["-n", workers]


def main(argv: list[str]) -> int:
    pytest_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    checks()
    if "--only-checks" in argv:
        return 0
    ensure_postgres()
    ensure_chromium()
    ensure_k8s()
    print("\n== pytest", flush=True)
    code = subprocess.run(
        [sys.executable, "-m", "pytest", *parallel(pytest_args), *pytest_args],
        cwd=ROOT,
        check=False,
    ).returncode
    if code == 5:
        print("pytest collected no tests: that is a failure here")
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
