"""The review queue on the real jobs service: values below the threshold or unverified,
ordered by impact, accepted or corrected, counted on the job, and private to their owner."""

from __future__ import annotations

import random
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format, struct_pb2

from bytereview.core import streams
from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from tests.conftest import USER
from tests.identity import IdentityProvider
from tests.services.jobs.helpers import WORKER, no_more_queued, ready_job, started_tasks, tasks

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

FIELDS = [
    pb.JobField(name="number", data_type="text"),
    pb.JobField(name="total", data_type="currency"),
]
THRESHOLD = 0.8


def assessment(confidence: float, verified: bool, quote: str = "") -> pb.ValueAssessment:
    return pb.ValueAssessment(
        confidence=confidence,
        verified=verified,
        evidence=pb.Evidence(
            page=1,
            quote=quote,
            box=pb.BoundingBox(left=0.1, top=0.2, right=0.5, bottom=0.25),
        ),
    )


# Per task: values and how far each can be trusted. Two values need review: a total of low
# confidence (money: first) and a number whose quote was not found.
REPORTS: list[tuple[dict[str, Any], dict[str, pb.ValueAssessment]]] = [
    (
        {"number": "A-1", "total": "10.00"},
        {
            "number": assessment(0.95, True, "Invoice Number: A-1"),
            "total": assessment(0.3, True, "Total: 10.00"),
        },
    ),
    (
        {"number": "B-2", "total": "20.00"},
        {
            "number": assessment(0.9, False, "Invoice B-2"),
            "total": assessment(0.99, True, "Total: 20.00"),
        },
    ),
]


async def assessed_job(job_stub: JobStub, worker_stub: WorkerStub, settings: Settings) -> str:
    """A COMPLETED job of two results whose worker reported assessments."""
    job = await ready_job(job_stub, worker_stub, settings, files=2)
    assert len(await started_tasks(job_stub, settings, job, FIELDS, 2)) == 2
    in_order = [t.name for t in await tasks(job_stub, job)]  # results list in task order
    for task, (values, assessments) in zip(in_order, REPORTS, strict=True):
        await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
        struct = struct_pb2.Struct()
        struct.update(values)
        request = worker_pb.ReportTaskResultRequest(
            task=task, values=struct, assessments=assessments, extractor="offline"
        )
        assert (await worker_stub.ReportTaskResult(request, metadata=WORKER)).applied
        # A redelivered report changes nothing, the counts included.
        assert not (await worker_stub.ReportTaskResult(request, metadata=WORKER)).applied
    return job


async def queue(
    stub: JobStub, parent: str, metadata: Any = USER, **kwargs: Any
) -> jobs_pb.ListReviewItemsResponse:
    request = jobs_pb.ListReviewItemsRequest(parent=parent, **kwargs)
    return await stub.ListReviewItems(request, metadata=metadata)


async def needing_review(stub: JobStub, job: str) -> int:
    got = await stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    return got.counters.values_needing_review


@pytest.mark.settings(review_confidence_threshold=THRESHOLD)
async def test_queue_orders_by_impact_and_empties_by_accept_and_correct(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await assessed_job(job_stub, worker_stub, settings)
    assert await needing_review(job_stub, job) == 2
    results = list(
        (await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)).results
    )
    assert [r.values_needing_review for r in results] == [1, 1]
    first = results[0].assessments
    assert first["total"].needs_review
    assert not first["number"].needs_review
    assert first["number"].evidence.quote == "Invoice Number: A-1"
    assert first["number"].evidence.box.right == pytest.approx(0.5)

    listed = await queue(job_stub, job)
    assert listed.total_size == 2
    total, number = listed.review_items
    # Money at confidence 0.3 outweighs a text value that is merely unverified.
    assert total.name == f"{results[0].name}/values/total"
    assert total.result == results[0].name
    assert (total.field, total.data_type, total.value.string_value) == (
        "total",
        "currency",
        "10.00",
    )
    assert list(total.reasons) == ["low_confidence"]
    assert total.impact == pytest.approx(2 * 0.7)
    assert total.assessment.needs_review
    assert not total.assessment.reviewed
    assert list(total.file_paths) == ["folder0/doc0.pdf"]
    assert number.name == f"{results[1].name}/values/number"
    assert list(number.reasons) == ["unverified"]
    assert total.impact > number.impact

    # A stricter threshold lists more: the number at 0.95 stays out, the one at 0.9 is in
    # already, the verified total at 0.99 stays out.
    stricter = await queue(job_stub, job, confidence_below=0.96)
    assert {i.name for i in stricter.review_items} == {
        total.name,
        number.name,
        f"{results[0].name}/values/number",
    }

    accepted = await job_stub.AcceptReviewItem(
        jobs_pb.AcceptReviewItemRequest(name=total.name), metadata=USER
    )
    assert accepted.assessment.reviewed
    assert not accepted.assessment.needs_review
    assert accepted.value.string_value == "10.00"  # accepted as it is
    assert [i.name for i in (await queue(job_stub, job)).review_items] == [number.name]
    assert await needing_review(job_stub, job) == 1

    # Correcting a value (UpdateResult) reviews it too; only the value that changed, when a
    # client sends the whole map back (as a table editing one cell may).
    whole = {**json_format.MessageToDict(results[1].values), "number": "B-20"}
    assert set(whole) == {"number", "total"}
    corrected = await job_stub.UpdateResult(
        jobs_pb.UpdateResultRequest(
            result=pb.Result(name=results[1].name, values=struct_values(whole)),
            update_mask=field_mask_pb2.FieldMask(paths=["values"]),
        ),
        metadata=USER,
    )
    assert corrected.values["number"] == "B-20"
    assert corrected.assessments["number"].reviewed
    assert not corrected.assessments["total"].reviewed
    assert corrected.values_needing_review == 0
    assert (await queue(job_stub, job)).total_size == 0
    assert await needing_review(job_stub, job) == 0
    # A reviewed value stays out even under a stricter threshold.
    assert total.name not in {
        i.name for i in (await queue(job_stub, job, confidence_below=0.99)).review_items
    }


def struct_values(values: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.settings(review_confidence_threshold=THRESHOLD)
async def test_queue_across_jobs_pages_and_tenancy(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, idp: IdentityProvider
) -> None:
    first = await assessed_job(job_stub, worker_stub, settings)
    second = await assessed_job(job_stub, worker_stub, settings)
    everything = await queue(job_stub, "jobs/-")
    assert everything.total_size == 4
    assert {i.name.split("/results/")[0] for i in everything.review_items} == {first, second}
    impacts = [i.impact for i in everything.review_items]
    assert impacts == sorted(impacts, reverse=True)

    paged, token = [], ""
    while True:
        page = await queue(job_stub, "jobs/-", page_size=3, page_token=token)
        paged += [i.name for i in page.review_items]
        token = page.next_page_token
        if not token:
            break
    assert paged == [i.name for i in everything.review_items]

    # Another user sees nothing of it, and cannot accept it.
    carol = idp.metadata("carol")
    assert (await queue(job_stub, "jobs/-", carol)).total_size == 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await queue(job_stub, first, carol)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await job_stub.AcceptReviewItem(
            jobs_pb.AcceptReviewItemRequest(name=everything.review_items[0].name), metadata=carol
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await queue(job_stub, "jobs/-")).total_size == 4
    # Our page token is not hers: `jobs/-` names every job of whoever calls (it was accepted).
    mine = (await queue(job_stub, "jobs/-", page_size=1)).next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await queue(job_stub, "jobs/-", carol, page_token=mine)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_review_requests_are_invalid_or_not_found(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await assessed_job(job_stub, worker_stub, settings)
    result = (await queue(job_stub, job)).review_items[0].result
    cases: list[tuple[Awaitable[Any], grpc.StatusCode]] = [
        (queue(job_stub, job, confidence_below=1.5), grpc.StatusCode.INVALID_ARGUMENT),
        (queue(job_stub, job, confidence_below=-0.1), grpc.StatusCode.INVALID_ARGUMENT),
        (queue(job_stub, "jobs/nope"), grpc.StatusCode.INVALID_ARGUMENT),
        (queue(job_stub, job, page_token="bogus"), grpc.StatusCode.INVALID_ARGUMENT),
        (
            job_stub.AcceptReviewItem(
                jobs_pb.AcceptReviewItemRequest(name=f"{result}/values/no-such"), metadata=USER
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            job_stub.AcceptReviewItem(
                jobs_pb.AcceptReviewItemRequest(name=f"{result}/values/missing"), metadata=USER
            ),
            grpc.StatusCode.NOT_FOUND,
        ),
    ]
    for call, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == code


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_untrusted_worker_numbers_are_bounded(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    """A confidence outside [0, 1] (or NaN) from a worker is stored as a probability, and
    its problem notes within 500 characters."""
    job = await ready_job(job_stub, worker_stub, settings, files=1)
    [task] = await started_tasks(job_stub, settings, job, FIELDS, 1)
    await no_more_queued(settings, streams.extract_queue(settings))
    await worker_stub.BeginTask(worker_pb.BeginTaskRequest(task=task), metadata=WORKER)
    await worker_stub.ReportTaskResult(
        worker_pb.ReportTaskResultRequest(
            task=task,
            values=struct_values({"number": "A", "total": None}),
            assessments={
                "number": pb.ValueAssessment(confidence=7.0, verified=True, problem="p" * 9),
                "total": pb.ValueAssessment(confidence=float("nan"), problem="q" * 100_000),
                "not_a_field": pb.ValueAssessment(confidence=0.1),
            },
        ),
        metadata=WORKER,
    )
    [result] = (
        await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    ).results
    assert result.assessments["number"].confidence == 1.0
    assert result.assessments["total"].confidence == 0.0
    assert set(result.assessments) == {"number", "total"}
    # A problem note is stored bounded; on an empty value it sends the value to review.
    assert result.assessments["total"].problem == "q" * 500
    assert result.assessments["total"].needs_review
    assert result.assessments["number"].problem == "p" * 9


BIG_FIELDS = [
    pb.JobField(name="number", data_type="text"),
    pb.JobField(name="total", data_type="currency"),
    pb.JobField(name="due", data_type="date_dmy"),
]
WEIGHTS = {"number": 1.0, "total": 2.0, "due": 1.5}


@pytest.mark.settings(review_confidence_threshold=THRESHOLD)
async def test_a_big_queue_pages_in_order(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    """A queue of hundreds of values pages in the database (#16): every page is the next
    slice of the whole queue ordered by impact, then position, then field; at the platform's
    threshold and another one (both halves of the index merged), with the count the job
    shows on every page."""
    job = await ready_job(job_stub, worker_stub, settings, files=240)
    started = await started_tasks(job_stub, settings, job, BIG_FIELDS, 240)
    rng = random.Random(16)
    reported: dict[str, tuple[dict[str, Any], dict[str, tuple[float, bool]]]] = {}
    for task in started:
        # Sixteenths: exact in binary, so the expected impacts here round as the service's.
        values = {f.name: rng.choice([None, f"{f.name}-{task[-4:]}"]) for f in BIG_FIELDS}
        trust = {f.name: (rng.randrange(17) / 16, rng.random() < 0.7) for f in BIG_FIELDS}
        reported[task] = (values, trust)
    for i in range(0, len(started), 100):
        batch = started[i : i + 100]
        await worker_stub.BeginTasks(
            worker_pb.BeginTasksRequest(tasks=[worker_pb.BeginTaskRequest(task=t) for t in batch]),
            metadata=WORKER,
        )
        answers = await worker_stub.ReportTaskResults(
            worker_pb.ReportTaskResultsRequest(
                results=[
                    worker_pb.ReportTaskResultRequest(
                        task=t,
                        values=struct_values(reported[t][0]),
                        assessments={
                            name: pb.ValueAssessment(confidence=c, verified=v)
                            for name, (c, v) in reported[t][1].items()
                        },
                        extractor="offline",
                    )
                    for t in batch
                ]
            ),
            metadata=WORKER,
        )
        assert all(a.applied for a in answers.results)
    results = (
        await job_stub.ListResults(
            jobs_pb.ListResultsRequest(parent=job, page_size=1000), metadata=USER
        )
    ).results
    # ListTasks is in position order, the order of results within a job.
    position = {t.name: i for i, t in enumerate(await tasks(job_stub, job))}

    def expected(threshold: float) -> list[str]:
        queue = []
        for result in results:
            values, trust = reported[result.task]
            for name, (confidence, verified) in trust.items():
                unverified = values[name] is not None and not verified
                if confidence < threshold or unverified:
                    risk = max(1 - confidence, 0.5 if unverified else 0.0)
                    key = (-WEIGHTS[name] * risk, position[result.task], name)
                    queue.append((key, f"{result.name}/values/{name}"))
        return [name for _, name in sorted(queue)]

    async def paged(size: int, count: int, **kwargs: Any) -> list[str]:
        names, token = [], ""
        while True:
            page = await queue(job_stub, job, page_size=size, page_token=token, **kwargs)
            assert len(page.review_items) <= size
            assert page.total_size == count
            names += [i.name for i in page.review_items]
            token = page.next_page_token
            if not token:
                return names

    flagged = expected(THRESHOLD)
    assert 200 < len(flagged) < 3 * 240  # a big queue, not every value
    assert await needing_review(job_stub, job) == len(flagged)
    assert await paged(50, len(flagged)) == flagged
    stricter = expected(0.95)
    assert len(stricter) > len(flagged)
    assert await paged(37, len(stricter), confidence_below=0.95) == stricter
    # Accepting a value mid-queue: the pages after it close up, the count follows.
    gone = flagged[60]
    await job_stub.AcceptReviewItem(jobs_pb.AcceptReviewItemRequest(name=gone), metadata=USER)
    assert await paged(50, len(flagged) - 1) == [n for n in flagged if n != gone]
    assert await needing_review(job_stub, job) == len(flagged) - 1
