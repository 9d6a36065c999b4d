"""The command-line client against the platform started by `bytereview up`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.up import free_port
from tests.archives import zip_bytes
from tests.e2e.conftest import Platform
from tests.hostile_documents import truncated_png
from tests.pdfs import text_pdf

pytestmark = pytest.mark.e2e


def cli(url: str, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    env["BYTEREVIEW_URL"] = url
    if token is not None:
        env["BYTEREVIEW_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "launcher.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def invoice(number: str, total: str) -> bytes:
    return text_pdf([f"Invoice Number: {number}", f"Total: {total}"])


def test_extract_files_folders_and_zips(platform: Platform, tmp_path: Path) -> None:
    url = platform.url
    (tmp_path / "one.pdf").write_bytes(invoice("A-1", "10.00"))
    folder = tmp_path / "march"
    folder.mkdir()
    (folder / "two.pdf").write_bytes(invoice("B-2", "20.00"))
    (tmp_path / "batch.zip").write_bytes(zip_bytes({"april/three.pdf": invoice("C-3", "30.00")}))
    out = tmp_path / "results.csv"
    done = cli(
        url,
        "extract",
        str(tmp_path / "one.pdf"),
        str(folder),
        str(tmp_path / "batch.zip"),
        "--field",
        "invoice_number:text:the invoice number",
        "--field",
        "total:currency",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    for stage in ("upload", "analysis", "extraction"):
        assert stage in done.stderr  # the progress bars
    with out.open() as results:
        rows = list(csv.DictReader(results))
    assert sorted((r["invoice_number"], r["total"]) for r in rows) == [
        ("A-1", "10.00"),  # money keeps the document's decimals
        ("B-2", "20.00"),
        ("C-3", "30.00"),
    ]


def test_templates_and_combined_mode_and_jobs(platform: Platform, tmp_path: Path) -> None:
    url = platform.url
    created = cli(
        url,
        "templates",
        "create",
        "Invoices CLI",
        "--field",
        "invoice_number:text:the invoice number",
        "--field",
        "total:currency",
    )
    assert created.returncode == 0, created.stderr
    template = json.loads(created.stdout)["name"]
    assert "Invoices CLI" in cli(url, "templates", "list").stdout
    folder = tmp_path / "q1"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(text_pdf(["Invoice Number: Q-1"]))
    (folder / "b.pdf").write_bytes(text_pdf(["Total: 99.50"]))
    out = tmp_path / "combined.json"
    done = cli(
        url, "extract", str(folder), "--template", "Invoices CLI", "--combined", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    exported = json.loads(out.read_text())
    rows = exported if isinstance(exported, list) else exported.get("results", [])
    assert len(rows) == 1
    assert "Q-1" in json.dumps(rows[0])
    assert '"99.50"' in json.dumps(rows[0])
    job = done.stderr.split("job ", 1)[1].split()[0]
    assert job in cli(url, "jobs", "list").stdout
    assert json.loads(cli(url, "jobs", "show", job).stdout)["status"] == "COMPLETED"
    assert cli(url, "jobs", "delete", job).returncode == 0
    assert cli(url, "jobs", "show", job).returncode == 1
    assert cli(url, "templates", "delete", template).returncode == 0


def test_failed_files_are_reported(platform: Platform, tmp_path: Path) -> None:
    url = platform.url
    (tmp_path / "good.pdf").write_bytes(invoice("G-1", "1.00"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7 this is not a PDF at all")
    # A JPEG by its first bytes, with no frame: READY at ingest, its task fails for good.
    (tmp_path / "scan.jpg").write_bytes(b"\xff\xd8\xff" + b"x" * 100)
    done = cli(
        url,
        "extract",
        str(tmp_path),
        "--field",
        "total:currency",
        "--out",
        str(tmp_path / "r.xlsx"),
    )
    assert done.returncode == 2, done.stderr
    assert "broken.pdf" in done.stderr
    [scan] = [line for line in done.stderr.splitlines() if line.startswith("  task ")]
    assert "scan.jpg: cannot read the image" in scan
    assert scan.endswith("(will fail again as it is)")
    assert (tmp_path / "r.xlsx").read_bytes()[:2] == b"PK"


def test_a_file_left_out_of_a_combined_result_is_reported(
    platform: Platform, tmp_path: Path
) -> None:
    """A truncated image in a folder read as one result: the export holds the folder's
    values from the other files and names the one left out; the CLI says so and exits 2."""
    folder = tmp_path / "receipts"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(text_pdf(["Invoice Number: L-1"]))
    (folder / "b.png").write_bytes(truncated_png())
    (folder / "c.pdf").write_bytes(text_pdf(["Total: 7.25"]))
    out = tmp_path / "left-out.json"
    done = cli(
        platform.url,
        "extract",
        str(folder),
        "--field",
        "invoice_number:text:the invoice number",
        "--field",
        "total:currency",
        "--combined",
        "--out",
        str(out),
    )
    assert done.returncode == 2, done.stderr
    assert (
        "file receipts/b.png: left out of its folder's result: cannot read the image "
        "(image file is truncated)"
    ) in done.stderr
    [row] = json.loads(out.read_text())["results"]
    assert row["values"] == {"invoice_number": "L-1", "total": "7.25"}
    assert row["skipped_files"] == [
        {"path": "receipts/b.png", "reason": "cannot read the image (image file is truncated)"}
    ]


def test_clear_messages_for_user_mistakes(platform: Platform, tmp_path: Path) -> None:
    url = platform.url
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(invoice("X", "1"))
    down = cli(f"http://127.0.0.1:{free_port()}", "extract", str(pdf), "--field", "a:text")
    assert down.returncode == 1
    assert "cannot reach ByteReview" in down.stderr
    denied = cli(url, "jobs", "list", token="not-a-valid-token")
    assert denied.returncode == 1
    assert "refused the credentials" in denied.stderr
    for args, message in (
        (["extract", str(pdf)], "either --template"),
        (["extract", str(pdf), "--field", "nocolon"], "name:type"),
        (["extract", str(pdf), "--field", "a:text", "--out", "r.txt"], ".csv, .xlsx or .json"),
        (["extract", str(tmp_path / "missing.pdf"), "--field", "a:text"], "no such file"),
        (["extract", str(pdf), "--template", "nope"], "no template called"),
        # Checked against ListDataTypes before anything is uploaded (#14).
        (["extract", str(pdf), "--field", "a:money"], "unknown data type 'money'"),
    ):
        done = cli(url, *args)
        assert done.returncode == 1, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "job jobs/" not in done.stderr, "a job was created for a refused command"
