"""`bytereview extract` says why its job stands still while its tasks are held: the extract
worker of a whole `bytereview up` waits out the model's service (the Gemini stand-in)
refusing the platform's key; the command prints the reason once, goes on once the key is
accepted, and ends with the results."""

from __future__ import annotations

import csv
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from services.jobs.domain.jobs.held_tasks import MODEL_REFUSES
from tests.e2e.conftest import launched
from tests.gemini_standin import API_KEY, GeminiStandIn, Reply, RunningStandIn
from tests.pdfs import text_pdf

pytestmark = pytest.mark.e2e


def test_the_cli_says_why_its_job_is_held(tmp_path: Path) -> None:
    answer = Reply(values={"invoice_number": "H-2"})
    with RunningStandIn(GeminiStandIn(default=lambda seen: answer)) as gemini:
        gemini.state.api_key = "a-key-the-platform-does-not-have"  # its key revoked, say
        env = {"BYTEREVIEW_GEMINI_API_KEY": API_KEY, "BYTEREVIEW_GEMINI_BASE_URL": gemini.base_url}
        with launched(tmp_path / "platform", env) as platform:
            (tmp_path / "h.pdf").write_bytes(text_pdf(["Invoice Number: H-2"]))
            out = tmp_path / "results.csv"
            cli_env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
            cli_env["BYTEREVIEW_URL"] = platform.url
            argv = [sys.executable, "-m", "launcher.cli", "extract", str(tmp_path / "h.pdf")]
            argv += ["--field", "invoice_number:text", "--out", str(out)]
            with subprocess.Popen(
                argv, env=cli_env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
            ) as command:
                lines: queue.Queue[str] = queue.Queue()
                assert command.stderr is not None
                stderr = command.stderr

                def read() -> None:
                    for line in stderr:
                        lines.put(line)

                threading.Thread(target=read, daemon=True).start()
                said: list[str] = []
                try:
                    while MODEL_REFUSES not in said:
                        said.append(lines.get(timeout=60).rstrip("\n"))
                    gemini.state.api_key = API_KEY  # the operator fixed it
                    assert command.wait(timeout=120) == 0, said
                finally:
                    command.kill()  # a held job never ends by itself
            while not lines.empty():
                said.append(lines.get().rstrip("\n"))
    assert said.count(MODEL_REFUSES) == 1, said
    assert "No longer held; going on." in said
    assert any(line.startswith("completed: ") for line in said), said
    with out.open() as results:
        assert [row["invoice_number"] for row in csv.DictReader(results)] == ["H-2"]
