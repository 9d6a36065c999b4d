"""Property-based fuzzing of the REST API from the served OpenAPI document, with every
schemathesis check: never a 5xx; answers that conform to the document (statuses, headers,
schemas, 405s with Allow); schema-valid requests accepted and schema-violating ones refused
(the document declares what the server enforces); and, in the stateful phase, the API used
the way its OpenAPI links describe (create a job, then get, configure, start, list it...)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bytereview.core import DEV_TOKEN
from gateway.openapi import LINKS
from gateway.proxy import public_routes
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e

HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
ROOT = Path(__file__).parents[2]


def _linked_groups() -> list[list[str]]:
    """The operations the document's links join (gateway/openapi.py, LINKS), one group per
    resource: a link's source and targets, merged where they share an operation."""
    groups: list[set[str]] = []
    for source, (_, targets) in LINKS.items():
        group = {source, *targets}
        for other in [g for g in groups if g & group]:
            group |= other
            groups.remove(other)
        groups.append(group)
    return [sorted(g) for g in groups]


LINKED = _linked_groups()


def _operation_chunks(count: int) -> list[list[str]]:
    """Every operation of the document (the gateway's public routes), dealt into `count`
    groups in name order, so the runs spread over the test processes."""
    ops = sorted(
        {f"{r.service.rsplit('.', 1)[-1]}_{r.method.name}" for r in public_routes().routes}
    )
    return [ops[i::count] for i in range(count)]


CHUNKS = _operation_chunks(4)


def schemathesis(url: str, report_dir: Path, *args: str, config: Path | None = None) -> str:
    """Run schemathesis with every check against the platform; its output, asserted clean."""
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            *(["--config-file", str(config)] if config else []),
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


@pytest.mark.parametrize("operations", CHUNKS, ids=lambda ops: f"{len(ops)}-from-{ops[0]}")
def test_every_operation_honours_the_document(
    platform: Platform, tmp_path: Path, operations: list[str]
) -> None:
    ops = [arg for op in operations for arg in ("--include-operation-id", op)]
    output = schemathesis(
        platform.url,
        tmp_path,
        # Examples, coverage (boundary and negative values) and fuzzing, on every operation
        # (of this quarter of them: together the four cover the document). The coverage
        # phase's cases do not depend on --max-examples; 10 fuzzed cases per operation, not
        # 20, halve the fuzzing phase's time (the suite's budget; the checks are the same).
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "10",
        *ops,
    )
    tested = output.split("Tested: ", 1)[1].split()[0]
    selected = output.split("Selected: ", 1)[1].split()[0]
    assert tested == selected.split("/")[0], output[-4000:]


@pytest.mark.parametrize("operations", LINKED, ids=lambda ops: ops[0].split("_")[0])
def test_linked_operations_chain_without_failure(
    platform: Platform, tmp_path: Path, operations: list[str]
) -> None:
    """The stateful phase on one resource's operations at a time, so its (bounded) scenarios
    are spent on chains of that resource rather than spread thin over all of them."""
    config = tmp_path / "schemathesis.toml"
    # Only the document's own links: schemathesis's inference guesses extra ones from names
    # (e.g. "DELETE a job returns a job"), which would spend the scenarios on random ids.
    config.write_text("[phases.stateful.inference]\nalgorithms = []\n")
    ops = [arg for op in operations for arg in ("--include-operation-id", op)]
    # 30 scenarios: deterministic generation follows the links the document's schemas lead
    # it to. At 15 it followed JobService's 9 of 11 until the document declared the media
    # type a file may carry and null among optional enums; then 8 (15 to 25 alike), at 30
    # 9 again (TemplateService 3 of 3, UserService 1 of 1), in ~9 s instead of ~5.
    output = schemathesis(
        platform.url, tmp_path, "--phases", "stateful", "--max-examples", "30", *ops, config=config
    )
    # Real resources were chained: every operation of the group was reached, and (nearly)
    # every link followed; with bounded scenarios one may go unfollowed.
    assert "API Links:" in output, output[-4000:]
    links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", output)
    assert links is not None, output[-4000:]
    assert int(links.group(1)) * 4 >= int(links.group(2)) * 3, output[-4000:]
    assert f"Tested: {len(operations)}" in output, output[-4000:]
