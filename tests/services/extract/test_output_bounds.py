"""What a model may make the platform store: a value past MAX_VALUE_CHARS, fields the job
did not ask for, nested or deeply nested output. Through the real google-genai SDK against
the Gemini stand-in, real NATS, the real jobs service and the real extract worker.

Before these bounds a 5,000,000-character answer was stored whole (and sent with every page
of results and every export), the model's extra keys rode along in the report, a nested
value was stored as its Python repr, and an answer nested past Python's recursion limit was
an internal error retried until MaxDeliver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bytereview.core import Settings
from bytereview.core.limits import MAX_VALUE_CHARS
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from services.extract.bounds import MAX_PROBLEM
from services.jobs import RunningJobsService
from tests.conftest import USER
from tests.gemini_standin import Reply, RunningStandIn
from tests.services.extract.test_worker import (
    completed_by_gemini,
    finished,
    gemini_settings,
    results,
    running_worker,
    start,
    tasks,
)

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_an_enormous_answer_is_a_null_value_to_review_and_extra_keys_are_dropped(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
) -> None:
    """A 5,000,000-character invoice number (the model quoted a document), 10,000 fields
    nobody asked for, in the values and in the evidence: the task succeeds once, the long
    value is stored as null and needs review, the total is kept, nothing else is stored."""
    huge = "A-1 " + "x" * 5_000_000
    extra = {f"unasked_{i}": "y" * 100 for i in range(10_000)}
    evidence = {name: {"page": 1, "quote": "z" * 100} for name in extra}
    evidence["invoice_number"] = {"page": 1, "quote": huge}
    gemini.state.script(
        Reply(values={"invoice_number": huge, "total": "10.00", **extra, "_evidence": evidence})
    )
    job = await completed_by_gemini(job_stub, worker_stub, settings, jobs, gemini)
    [task] = await tasks(job_stub, job)
    assert task.status == pb.Task.SUCCEEDED
    assert task.attempts == 1
    [result] = await results(job_stub, job)
    assert dict(result.values) == {"invoice_number": None, "total": "10.00"}
    assert set(result.assessments) == {"invoice_number", "total"}
    flagged = result.assessments["invoice_number"]
    assert flagged.needs_review
    assert flagged.confidence == 0.0
    # The reviewer is told why it is empty, in a note of bounded length.
    assert flagged.problem.startswith("the extractor answered 5000004 characters")
    assert result.assessments["total"].problem == ""
    assert len(gemini.state.seen) == 1


async def test_an_answer_unreadable_as_its_type_is_empty_and_says_why(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
) -> None:
    """A total the model wrote as words is no amount: the value is empty, and rather than
    passing as a total the document does not print (it was not in the review queue, and
    why it was empty was only in the worker's log), it waits for review, with the answer."""
    words = "twelve and a half " * 40
    gemini.state.script(Reply(values={"invoice_number": "A-1", "total": words}))
    job = await completed_by_gemini(job_stub, worker_stub, settings, jobs, gemini)
    [result] = await results(job_stub, job)
    assert dict(result.values) == {"invoice_number": "A-1", "total": None}
    total = result.assessments["total"]
    assert total.needs_review
    assert total.problem.startswith("no amount in 'twelve and a half")
    assert len(total.problem) == MAX_PROBLEM  # the answer is cut, the note is not a copy
    assert result.assessments["invoice_number"].problem == ""
    items = await job_stub.ListReviewItems(
        jobs_pb.ListReviewItemsRequest(parent=job), metadata=USER
    )
    by_field = {item.field: item for item in items.review_items}
    assert "unreadable" in by_field["total"].reasons
    assert by_field["total"].assessment.problem == total.problem


async def test_a_value_at_the_limit_is_kept_whole(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
) -> None:
    """MAX_VALUE_CHARS characters is what a user may type as a correction: stored as is."""
    longest = "A" + "b" * (MAX_VALUE_CHARS - 1)
    gemini.state.script(Reply(values={"invoice_number": longest, "total": "10.00"}))
    job = await completed_by_gemini(job_stub, worker_stub, settings, jobs, gemini)
    [result] = await results(job_stub, job)
    assert result.values["invoice_number"] == longest


async def test_a_nested_value_is_null_not_its_repr(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
) -> None:
    """An object or a list is no field's value: null (to review), not "{'a': ...}"."""
    nested: object = "deep"
    for _ in range(200):
        nested = {"a": [nested]}
    gemini.state.script(Reply(values={"invoice_number": nested, "total": ["10.00"]}))
    job = await completed_by_gemini(job_stub, worker_stub, settings, jobs, gemini)
    [result] = await results(job_stub, job)
    assert dict(result.values) == {"invoice_number": None, "total": None}


async def test_an_answer_nested_past_any_reading_fails_its_task_at_once(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
    gemini: RunningStandIn,
) -> None:
    """JSON nested 100,000 deep cannot be parsed (Python's recursion limit): it is output
    off the schema, asked for twice as any, then the task fails saying so; it is not an
    internal error retried until MaxDeliver."""
    deep = '{"invoice_number": ' + "[" * 100_000 + "]" * 100_000 + ', "total": null}'
    gemini.state.default = lambda seen: Reply(text=deep)
    job = await start(job_stub, worker_stub, settings)
    async with running_worker(gemini_settings(settings, jobs, gemini, max_deliver=5)):
        assert (await finished(job_stub, job)).status == pb.Job.FAILED
    [task] = await tasks(job_stub, job)
    assert task.status == pb.Task.FAILED
    assert "nested too deeply" in task.last_error
    assert len(gemini.state.seen) == 2
