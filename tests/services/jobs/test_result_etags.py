"""A correction, accept or revert sent with the etag the user read is refused once the result
changed since (AIP-154): two reviewers on one result, the second overwrote the first (or
marked reviewed a value they never saw, or undid the first's correction) without seeing it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from tests.conftest import USER
from tests.services.jobs.test_review import THRESHOLD, assessed_job, queue
from tests.services.jobs.test_typed_corrections import _result

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def _update(job_stub: JobStub, name: str, values: dict[str, Any], etag: str) -> pb.Result:
    sent = struct_pb2.Struct()
    sent.update(values)
    return await job_stub.UpdateResult(
        jobs_pb.UpdateResultRequest(
            result=pb.Result(name=name, values=sent, etag=etag),
            update_mask=field_mask_pb2.FieldMask(paths=["values"]),
        ),
        metadata=USER,
    )


async def _read(job_stub: JobStub, name: str) -> pb.Result:
    return await job_stub.GetResult(jobs_pb.GetResultRequest(name=name), metadata=USER)


async def test_get_result_reads_one_result_as_listed(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    """A partner reading a result back before correcting it needed the job's whole list."""
    name = await _result(job_stub, worker_stub, settings)
    await _update(job_stub, name, {"vendor": "A"}, "")
    job = name.rsplit("/results/", 1)[0]
    listed = await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    got = await _read(job_stub, name)
    assert got == listed.results[0]
    assert (got.version, got.etag, got.values["vendor"]) == (2, '"2"', "A")
    for bad, code in (
        (f"{job}/results/{'0' * 32}", grpc.StatusCode.NOT_FOUND),
        (f"{job}/results/x", grpc.StatusCode.INVALID_ARGUMENT),
        (job, grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _read(job_stub, bad)
        assert err.value.code() == code, bad


async def test_a_correction_on_a_stale_read_is_refused_and_changes_nothing(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    name = await _result(job_stub, worker_stub, settings)
    read_by_a = read_by_b = await _read(job_stub, name)
    assert read_by_a.etag
    first = await _update(job_stub, name, {"vendor": "A's fix"}, read_by_a.etag)
    assert first.version == 2
    assert first.etag != read_by_a.etag

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _update(job_stub, name, {"vendor": "B's fix"}, read_by_b.etag)
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert "changed since it was read (it is at version 2 now)" in (err.value.details() or "")
    now = await _read(job_stub, name)
    assert (now.values["vendor"], now.version, now.etag) == ("A's fix", 2, first.etag)

    # Read again, B's correction goes through; without an etag, as before etags, too.
    again = await _update(job_stub, name, {"vendor": "B's fix"}, now.etag)
    assert (again.values["vendor"], again.version) == ("B's fix", 3)
    blind = await _update(job_stub, name, {"vendor": "C"}, "")
    assert blind.version == 4


async def test_an_etag_this_api_never_gave_is_a_bad_argument(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    """Not "changed since it was read": nothing was read."""
    name = await _result(job_stub, worker_stub, settings)
    for given in ("1", 'W/"1"', '"abc"', '"0"'):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _update(job_stub, name, {"vendor": "x"}, given)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, given
        assert "no etag this API gives" in (err.value.details() or "")


@pytest.mark.settings(review_confidence_threshold=THRESHOLD)
async def test_an_accept_on_a_stale_review_item_is_refused_and_marks_nothing(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await assessed_job(job_stub, worker_stub, settings)
    total = (await queue(job_stub, job)).review_items[0]
    assert total.field == "total"
    assert total.etag == (await _read(job_stub, total.result)).etag == '"1"'

    # A colleague corrects the number of the same result: its total is still what the item
    # showed, but the result is not what the reviewer read.
    await _update(job_stub, total.result, {"number": "A-10"}, total.etag)

    def accept(etag: str) -> Any:
        request = jobs_pb.AcceptReviewItemRequest(name=total.name, etag=etag)
        return job_stub.AcceptReviewItem(request, metadata=USER)

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await accept(total.etag)
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert "etag: the result changed since it was read (it is at version 2 now)" in (
        err.value.details() or ""
    )
    assert total.name in {i.name for i in (await queue(job_stub, job)).review_items}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await accept("2")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    again = (await queue(job_stub, job)).review_items[0]
    assert (again.name, again.etag) == (total.name, '"2"')
    accepted = await accept(again.etag)
    assert accepted.assessment.reviewed
    assert accepted.etag == '"2"'  # an accept marks, it makes no version
    assert total.name not in {i.name for i in (await queue(job_stub, job)).review_items}


async def test_a_revert_on_a_stale_read_is_refused_and_undoes_nothing(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    name = await _result(job_stub, worker_stub, settings)
    read = await _update(job_stub, name, {"vendor": "A's fix"}, "")
    await _update(job_stub, name, {"vendor": "B's fix"}, read.etag)

    def revert(etag: str) -> Any:
        request = jobs_pb.RevertResultRequest(name=name, version=f"{name}/versions/1", etag=etag)
        return job_stub.RevertResult(request, metadata=USER)

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await revert(read.etag)
    assert err.value.code() == grpc.StatusCode.ABORTED
    now = await _read(job_stub, name)
    assert (now.values["vendor"], now.version) == ("B's fix", 3)

    reverted = await revert(now.etag)
    assert (reverted.version, reverted.etag) == (4, '"4"')
    assert reverted.values["vendor"] != "B's fix"
