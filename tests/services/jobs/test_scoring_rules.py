"""How golden values are compared, and how a score reads when its run can never settle."""

from __future__ import annotations

import pytest

from services.jobs.domain.results.scoring import normalised, score_state
from services.jobs.store import models


@pytest.mark.parametrize(
    ("golden", "extracted", "equal"),
    [
        ("10.00", 10.0, True),
        ("10.00", "10", True),
        ("-3.50", "-3.5", True),
        ("10.00", "10.01", False),
        ("ACME  GmbH", "acme gmbh", True),
        ("A-1", "A-7", False),
        (None, None, True),
        (None, "", False),
        (True, "true", True),
        (False, True, False),
    ],
)
def test_values_compare_by_meaning(golden: object, extracted: object, equal: bool) -> None:
    assert (normalised(golden) == normalised(extracted)) is equal


def test_a_run_cancelled_or_deleted_reads_failed() -> None:
    row = models.TemplateVersion(score_state="RUNNING", score_error="")
    running = models.Job(status="RUNNING")
    assert score_state(row, running) == ("RUNNING", "")
    assert score_state(row, models.Job(status="CANCELLED"))[0] == "FAILED"
    assert score_state(row, None)[0] == "FAILED"
    never = models.TemplateVersion(score_state="", score_error="")
    assert score_state(never, None) == ("", "")
