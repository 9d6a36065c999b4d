"""Every pair of statuses: legal moves pass, every other move is FAILED_PRECONDITION; `move`,
the one status writer, checks, writes, stamps and records; nothing else writes a status."""

from __future__ import annotations

import ast
import itertools
from enum import StrEnum
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

import services.jobs
from bytereview.core.errors import FailedPrecondition
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs.domain import FileStatus, JobStatus, Progress, TaskStatus, move
from services.jobs.domain import status as sm
from services.jobs.store import models

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
        ("COMPLETED", "QUEUED"),  # a re-run
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
        ("SUCCEEDED", "QUEUED"),  # a re-run
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
    final = {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELLED"}
    for status in _statuses("job"):
        expected = status not in final
        assert sm.can_transition("job", status, "CANCELLED") == expected


STATUS_ENUMS: dict[str, type[StrEnum]] = {"job": JobStatus, "file": FileStatus, "task": TaskStatus}


@pytest.mark.parametrize("kind", sorted(ENUMS))
def test_typed_statuses_are_the_stored_proto_names(kind: str) -> None:
    """The enums' values are what the database holds today: the proto enum names."""
    assert [s.value for s in STATUS_ENUMS[kind]] == _statuses(kind)


def _job(status: str) -> models.Job:
    return models.Job(id="j" * 32, user_id="u" * 32, status=status, event_sequence=0)


def _events(session: AsyncSession) -> list[models.JobEvent]:
    return [row for row in session.new if isinstance(row, models.JobEvent)]


def test_move_writes_the_status_stamps_the_time_and_records_the_event() -> None:
    session = AsyncSession()
    job = _job("RUNNING")
    move(session, job, JobStatus.COMPLETED, actor="system", message="1 succeeded, 0 failed")
    assert job.status == "COMPLETED"
    assert job.finished_at is not None
    [event] = _events(session)
    assert (event.kind, event.subject, event.sequence) == ("job.status", f"jobs/{job.id}", 1)
    assert (event.from_status, event.to_status) == ("RUNNING", "COMPLETED")
    assert (event.actor, event.message) == ("system", "1 succeeded, 0 failed")
    assert job.event_sequence == 1


def test_move_of_a_task_stamps_its_start_and_end() -> None:
    session = AsyncSession()
    job = _job("RUNNING")
    task = models.Task(id="t" * 32, job_id=job.id, status="QUEUED")
    move(session, job, TaskStatus.RUNNING, row=task, actor="system")
    assert (task.status, task.finished_at) == ("RUNNING", None)
    assert task.started_at is not None
    move(session, job, TaskStatus.SUCCEEDED, row=task, actor="system")
    assert task.finished_at is not None
    assert [(e.kind, e.subject, e.to_status) for e in _events(session)] == [
        ("task.status", f"jobs/{job.id}/tasks/{task.id}", "RUNNING"),
        ("task.status", f"jobs/{job.id}/tasks/{task.id}", "SUCCEEDED"),
    ]


def test_a_retried_job_is_no_longer_finished() -> None:
    session = AsyncSession()
    job = _job("RUNNING")
    move(session, job, JobStatus.FAILED, actor="system")
    move(session, job, JobStatus.QUEUED, actor="users/u", action="retry failed tasks")
    assert (job.status, job.finished_at) == ("QUEUED", None)


def test_move_without_record_writes_no_event() -> None:
    session = AsyncSession()
    job = _job("ANALYZING")
    file = models.SourceFile(id="f" * 32, job_id=job.id, status="PENDING_UPLOAD")
    move(session, job, FileStatus.UPLOADED, row=file, actor="t", record=False)
    assert file.status == "UPLOADED"
    assert _events(session) == []
    assert job.event_sequence == 0


def test_an_illegal_move_is_failed_precondition_and_writes_nothing() -> None:
    session = AsyncSession()
    job = _job("COMPLETED")
    with pytest.raises(
        FailedPrecondition, match="cannot pause the job: the job has completed"
    ) as err:
        move(session, job, JobStatus.PAUSED, actor="t", action="pause the job")
    assert err.value.code == "FAILED_PRECONDITION"
    assert job.status == "COMPLETED"
    assert _events(session) == []


def _status_writes(tree: ast.AST) -> list[int]:
    """Lines that assign `.status` or pass `status=` to an UPDATE's `.values(...)`."""
    lines = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "values"
            and any(k.arg == "status" for k in node.keywords)
        ):
            lines.append(node.lineno)
        lines += [t.lineno for t in targets if isinstance(t, ast.Attribute) and t.attr == "status"]
    return lines


def test_only_the_status_module_writes_statuses() -> None:
    root = Path(services.jobs.__file__).parent
    writers = {
        str(path.relative_to(root)): lines
        for path in sorted(root.rglob("*.py"))
        if (lines := _status_writes(ast.parse(path.read_text())))
    }
    assert set(writers) == {"domain/status.py"}, writers


def test_the_status_scan_finds_a_write() -> None:
    source = "row.status = 'READY'\nq.values(status='X')\n"
    assert _status_writes(ast.parse(source)) == [1, 2]


@pytest.mark.parametrize(
    ("job_status", "files", "done"),
    [
        ("PENDING_UPLOAD", {"PENDING_UPLOAD": 2}, False),
        ("ANALYZING", {"UPLOADED": 1, "READY": 1}, False),
        ("ANALYZING", {"ANALYZING": 1, "FAILED": 1}, False),
        ("ANALYZING", {"READY": 1, "UNSUPPORTED": 1}, True),
        ("READY", {"READY": 2}, True),
        # Past analysis it is done, whatever the files say (a cancelled upload never settles).
        ("CANCELLED", {"PENDING_UPLOAD": 1}, True),
    ],
)
def test_analysis_is_done_once_no_file_waits(
    job_status: str, files: dict[str, int], done: bool
) -> None:
    assert Progress(_job(job_status), files, {}).analysis_done is done
