"""`bytereview extract` and `results review` leave nothing behind they should not: a job
the command did not start, a results file it could not write, a value it did not mean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bytereview.core import DEV_TOKEN
from tests.e2e.conftest import Platform
from tests.e2e.test_cli import cli, invoice

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


def _jobs(url: str) -> set[str]:
    listed = httpx.get(f"{url}/v1/jobs", headers=AUTH, params={"pageSize": 1000}).json()
    return {j["name"] for j in listed.get("jobs", [])}


def test_a_job_refused_before_it_starts_is_removed(platform: Platform, tmp_path: Path) -> None:
    url = platform.url
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(invoice("X-1", "1.00"))
    before = _jobs(url)
    # The platform refuses the field's name at :configure, after the upload: the job stayed
    # READY for good (`cleanup abandoned` removes only jobs never finalized).
    done = cli(
        url, "extract", str(pdf), "--field", "to tal:currency", "--out", str(tmp_path / "r.csv")
    )
    assert done.returncode == 1, done.stderr
    assert "must start with a letter" in done.stderr
    assert "was not started and has been removed" in done.stderr
    assert _jobs(url) == before
    # An --out nobody can write is refused before anything is uploaded: it was found once the
    # whole job had run, with a traceback, and the results were lost.
    nowhere = tmp_path / "missing" / "r.csv"
    done = cli(url, "extract", str(pdf), "--field", "total:currency", "--out", str(nowhere))
    assert done.returncode == 1, done.stderr
    assert "there is no folder" in done.stderr
    assert "Traceback" not in done.stderr
    assert _jobs(url) == before


def test_folders_with_empty_files_and_named_through_dotdot(
    platform: Platform, tmp_path: Path
) -> None:
    folder = tmp_path / "march"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.pdf").write_bytes(invoice("A-1", "10.00"))
    (folder / ".gitkeep").write_bytes(b"")  # the platform refuses a job declaring it
    out = tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    env["BYTEREVIEW_URL"] = platform.url
    argv = ["extract", "..", "--field", "total:currency", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "launcher.cli", *argv],
        cwd=folder / "sub",
        env={**env, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "left out 1 empty file(s): march/.gitkeep" in done.stderr
    # `..` is the folder `march`: `../one.pdf` was refused (a path must not contain '..').
    [row] = json.loads(out.read_text())["results"]
    assert (row["file"], row["values"]["total"]) == ("march/one.pdf", "10.00")


def test_a_correction_is_sent_as_typed(platform: Platform, tmp_path: Path) -> None:
    url = platform.url
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(invoice("A-1", "10.00"))
    done = cli(
        url,
        "extract",
        str(pdf),
        "--field",
        "invoice_number:text",
        "--field",
        "total:currency",
        "--out",
        str(tmp_path / "r.csv"),
    )
    assert done.returncode == 0, done.stderr
    job = done.stderr.split("job ", 1)[1].split()[0]
    [result] = httpx.get(f"{url}/v1/{job}/results", headers=AUTH).json()["results"]
    number = f"{result['name']}/values/invoice_number"
    listed = cli(url, "results", "review", job, "--below", "1")
    lines = listed.stdout.splitlines()
    assert 'etag "1"' in lines[lines.index(number) + 1], listed.stdout
    # Read as JSON these were the number 1.2345678901234567e+19, 100000.0 and a boolean.
    for typed in ("12345678901234567890", "1e5", "true"):
        corrected = cli(url, "results", "review", job, "--correct", number, typed)
        assert corrected.returncode == 0, corrected.stderr
        [result] = httpx.get(f"{url}/v1/{job}/results", headers=AUTH).json()["results"]
        assert result["values"]["invoice_number"] == typed
    total = f"{result['name']}/values/total"
    assert cli(url, "results", "review", job, "--correct", total, "12.40").returncode == 0
    assert cli(url, "results", "review", job, "--correct", number, "null").returncode == 0
    [result] = httpx.get(f"{url}/v1/{job}/results", headers=AUTH).json()["results"]
    assert (result["values"]["total"], result["values"]["invoice_number"]) == ("12.40", None)

    # With the etag read, a value changed since is neither accepted nor overwritten.
    stale = str(result["version"] - 1)
    for action in (["--accept", total], ["--correct", total, "13.00"]):
        refused = cli(url, "results", "review", job, *action, "--etag", stale)
        assert refused.returncode == 1, refused.stdout
        assert "changed since it was read" in refused.stderr
    fresh = f'"{result["version"]}"'
    assert cli(url, "results", "review", job, "--accept", total, "--etag", fresh).returncode == 0
    [result] = httpx.get(f"{url}/v1/{job}/results", headers=AUTH).json()["results"]
    assert result["values"]["total"] == "12.40"
    assert result["assessments"]["total"]["reviewed"]


def test_a_token_flag_beats_an_api_key_in_the_environment(platform: Platform) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    env.update(BYTEREVIEW_URL=platform.url, BYTEREVIEW_API_KEY="brk_not-a-key")
    done = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "jobs", "list", "--token", DEV_TOKEN],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_when_no_file_can_be_read_each_reason_is_told(platform: Platform, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.pdf").write_bytes(invoice("A-1", "1.00")[:300])
    done = cli(
        platform.url,
        "extract",
        str(tmp_path / "notes.txt"),
        str(tmp_path / "broken.pdf"),
        "--field",
        "total:currency",
        "--out",
        str(tmp_path / "r.csv"),
    )
    # Files that failed: exit 2, each with its reason (it was 1 and `see jobs show`, which
    # shows no file's reason).
    assert done.returncode == 2, done.stderr
    assert "none of the files could be read:" in done.stderr
    assert "file notes.txt: the file is plain text" in done.stderr
    assert "file broken.pdf:" in done.stderr
