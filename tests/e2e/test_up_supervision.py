"""`bytereview up` supervises like Kubernetes: one port setting, one launcher per data dir,
a crash-looping child backs off while everything else keeps serving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from bytereview.core.settings import DEV_TOKEN
from launcher.up import free_port
from tests.e2e.conftest import Platform, launched

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}
COMPONENTS = {"nats", "jobs", "ingest-1", "extract-1", "gateway"}
GATEWAY_PORT = free_port()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    # No --port: the gateway port comes from the setting the gateway itself reads.
    env = {"BYTEREVIEW_GATEWAY_PORT": str(GATEWAY_PORT), "BYTEREVIEW_LOCAL_MAX_WORKERS": "1"}
    with launched(tmp_path_factory.mktemp("up"), env, port=None) as running:
        yield running


def test_the_gateway_answers_on_its_port_setting(platform: Platform) -> None:
    assert platform.url == f"http://127.0.0.1:{GATEWAY_PORT}"
    assert httpx.get(f"{platform.url}/readyz", timeout=10).status_code == 200


def test_a_second_up_on_the_same_data_dir_refuses(platform: Platform) -> None:
    before = platform.children()
    assert set(before) == COMPONENTS
    # No --data-dir: the data dir comes from the setting the children read.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    env["BYTEREVIEW_DATA_DIR"] = str(platform.data_dir)
    started = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "up"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert second.returncode != 0
    assert f"in use by another `bytereview up` (pid {platform.process.pid})" in second.stderr
    assert time.monotonic() - started < 15, "refused at once, not after a start-up attempt"
    assert platform.children() == before, "the second launcher started or stopped something"


def test_a_crash_looping_child_backs_off_while_the_rest_keeps_serving(platform: Platform) -> None:
    others = {k: v for k, v in platform.children().items() if k != "ingest-1"}
    delays = []
    with httpx.Client(base_url=platform.url, headers=AUTH, timeout=10) as client:
        for crash in (1, 2, 3):
            victim = _wait_for_child(platform, "ingest-1", old=None)
            mark = len(platform.lines)
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            line = platform.wait_for_line(
                r"ingest exited with code -9 .*; restarting in (\d+)s \(crash (\d+)", after=mark
            )
            assert int(line.group(2)) == crash
            delays.append(int(line.group(1)))
            # Meanwhile the gateway answers and no other process was touched.
            while not (new := _child(platform, "ingest-1", old=victim)):
                assert client.get("/v1/jobs").status_code == 200
                time.sleep(0.2)
            assert time.monotonic() - killed_at >= delays[-1]
            assert {k: v for k, v in platform.children().items() if k != "ingest-1"} == others
            assert new != victim
    assert delays == [1, 2, 4]


def _child(platform: Platform, name: str, old: int | None) -> int | None:
    pid = platform.children().get(name)
    return pid if pid is not None and pid != old else None


def _wait_for_child(platform: Platform, name: str, old: int | None, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid := _child(platform, name, old):
            return pid
        time.sleep(0.1)
    raise AssertionError(f"{name} is not running: {platform.children()}")
