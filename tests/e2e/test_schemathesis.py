"""Property-based fuzzing of the REST API from the served OpenAPI document, with every
schemathesis check: never a 5xx; answers that conform to the document (statuses, headers,
schemas, 405s with Allow); schema-valid requests accepted and schema-violating ones refused
(the document declares what the server enforces); and, in the stateful phase, the API used
the way its OpenAPI links describe (create a job, then get, configure, start, list it...)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bytereview.core import DEV_TOKEN
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e

HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
ROOT = Path(__file__).parents[2]
# The operations the document's links join (gateway/openapi.py, LINKS): the stateful phase
# runs on them alone, so its scenarios are spent on chains of real resources.
LINKED = [
    "JobService_CreateJob",
    "JobService_GetJob",
    "JobService_GetJobProgress",
    "JobService_ConfigureJob",
    "JobService_FinalizeUploads",
    "JobService_StartJob",
    "JobService_CancelJob",
    "JobService_ListFiles",
    "JobService_ListResults",
    "JobService_ListJobEvents",
    "JobService_DeleteJob",
    "TemplateService_CreateTemplate",
    "TemplateService_GetTemplate",
    "TemplateService_UpdateTemplate",
    "TemplateService_DeleteTemplate",
    "UserService_CreateApiKey",
    "UserService_DeleteApiKey",
]


def schemathesis(url: str, report_dir: Path, *args: str) -> str:
    """Run schemathesis with every check against the platform; its output, asserted clean."""
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{url}/openapi.json",
            "--checks",
            "all",
            "--generation-deterministic",
            "--request-timeout",
            "10",
            "--header",
            f"Authorization: Bearer {DEV_TOKEN}",
            "--report-dir",
            str(report_dir),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        # The hooks import the server's own path rule (services.jobs.domain.paths).
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    summary = done.stdout[-6000:]
    assert done.returncode == 0, summary + done.stderr[-2000:]
    assert "Server error" not in done.stdout, summary
    assert "failures" not in summary.rsplit("SUMMARY", 1)[-1], summary
    return done.stdout


def test_every_operation_honours_the_document(platform: Platform, tmp_path: Path) -> None:
    output = schemathesis(
        platform.url,
        tmp_path,
        # Examples, coverage (boundary and negative values) and fuzzing, on every operation.
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "20",
    )
    tested = output.split("Tested: ", 1)[1].split()[0]
    selected = output.split("Selected: ", 1)[1].split()[0]
    assert tested == selected.split("/")[0], output[-4000:]


def test_linked_operations_chain_without_failure(platform: Platform, tmp_path: Path) -> None:
    ops = [arg for op in LINKED for arg in ("--include-operation-id", op)]
    output = schemathesis(
        platform.url, tmp_path, "--phases", "stateful", "--max-examples", "30", *ops
    )
    # Real resources were chained: links were followed, not only their sources called.
    assert "API Links:" in output, output[-4000:]
    covered = output.split("API Links:", 1)[1].split()[0]
    assert int(covered) >= 10, output[-4000:]
