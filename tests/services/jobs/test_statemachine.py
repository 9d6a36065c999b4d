"""Every pair of statuses: legal moves pass, every other move is FAILED_PRECONDITION."""

from __future__ import annotations

import itertools

import pytest

from bytereview.core.errors import FailedPrecondition
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs import statemachine as sm

LEGAL = {
    "job": {
        ("PENDING_UPLOAD", "ANALYZING"),
        ("PENDING_UPLOAD", "CANCELLED"),
        ("ANALYZING", "READY"),
        ("ANALYZING", "FAILED"),
        ("ANALYZING", "CANCELLED"),
        ("READY", "QUEUED"),
        ("READY", "CANCELLED"),
        ("QUEUED", "RUNNING"),
        ("QUEUED", "PAUSED"),
        ("QUEUED", "CANCELLED"),
        ("QUEUED", "COMPLETED"),
        ("QUEUED", "PARTIALLY_COMPLETED"),
        ("QUEUED", "FAILED"),
        ("RUNNING", "PAUSED"),
        ("RUNNING", "CANCELLED"),
        ("RUNNING", "COMPLETED"),
        ("RUNNING", "PARTIALLY_COMPLETED"),
        ("RUNNING", "FAILED"),
        ("PAUSED", "QUEUED"),
        ("PAUSED", "RUNNING"),
        ("PAUSED", "CANCELLED"),
        ("PARTIALLY_COMPLETED", "QUEUED"),
        ("FAILED", "QUEUED"),
    },
    "file": {
        ("PENDING_UPLOAD", "UPLOADED"),
        ("PENDING_UPLOAD", "FAILED"),
        *(("UPLOADED", s) for s in ("ANALYZING", "READY", "UNPACKED", "UNSUPPORTED", "FAILED")),
        *(("ANALYZING", s) for s in ("READY", "UNPACKED", "UNSUPPORTED", "FAILED")),
    },
    "task": {
        ("QUEUED", "RUNNING"),
        ("QUEUED", "FAILED"),
        ("QUEUED", "CANCELLED"),
        ("RUNNING", "QUEUED"),
        ("RUNNING", "SUCCEEDED"),
        ("RUNNING", "FAILED"),
        ("RUNNING", "CANCELLED"),
        ("FAILED", "QUEUED"),
    },
}
ENUMS = {"job": pb.Job.Status, "file": pb.SourceFile.Status, "task": pb.Task.Status}


def _statuses(kind: str) -> list[str]:
    return [v.name for v in ENUMS[kind].DESCRIPTOR.values if v.name != "STATUS_UNSPECIFIED"]


def test_tables_cover_every_proto_status() -> None:
    for kind in ENUMS:
        assert set(sm.TABLES[kind]) == set(_statuses(kind))


@pytest.mark.parametrize("kind", sorted(ENUMS))
def test_every_transition(kind: str) -> None:
    for current, target in itertools.product(_statuses(kind), repeat=2):
        legal = (current, target) in LEGAL[kind]
        assert sm.can_transition(kind, current, target) == legal, (kind, current, target)
        if legal:
            sm.check_transition(kind, current, target)
        else:
            with pytest.raises(FailedPrecondition, match="cannot"):
                sm.check_transition(kind, current, target)


def test_cancel_is_allowed_from_every_unfinished_job_status() -> None:
    for status in _statuses("job"):
        expected = status not in sm.JOB_FINAL
        assert sm.can_transition("job", status, "CANCELLED") == expected
