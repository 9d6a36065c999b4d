"""The Batcher: concurrent calls of one kind go out as one call, each caller gets its answer."""

from __future__ import annotations

import asyncio

import pytest

from bytereview.core.batching import Batcher


class Recorder:
    def __init__(self, *, fail: Exception | None = None, hold: asyncio.Event | None = None):
        self.batches: list[list[int]] = []
        self._fail = fail
        self._hold = hold

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if self._hold is not None:
            await self._hold.wait()
        if self._fail is not None:
            raise self._fail
        return [i * 10 for i in items]


async def test_calls_started_together_go_as_one_batch_in_order() -> None:
    call = Recorder()
    batcher = Batcher(call, max_batch=100)
    answers = await asyncio.gather(*(batcher.submit(i) for i in range(5)))
    assert answers == [0, 10, 20, 30, 40]
    assert call.batches == [[0, 1, 2, 3, 4]]


async def test_what_arrives_while_a_call_is_in_flight_goes_in_the_next() -> None:
    hold = asyncio.Event()
    call = Recorder(hold=hold)
    batcher = Batcher(call, max_batch=100)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.01)
    later = [asyncio.create_task(batcher.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0.01)
    assert call.batches == [[1]]  # one call in flight at a time
    hold.set()
    assert await first == 10
    assert await asyncio.gather(*later) == [20, 30, 40]
    assert call.batches == [[1], [2, 3, 4]]


async def test_batches_are_capped() -> None:
    call = Recorder()
    batcher = Batcher(call, max_batch=2)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(5))) == [0, 10, 20, 30, 40]
    assert call.batches == [[0, 1], [2, 3], [4]]


async def test_batches_are_capped_by_weight_and_a_heavy_item_goes_alone() -> None:
    """With a weight (a report's bytes), a batch stops before it would pass `max_weight`:
    one message over gRPC's size limit would fail every report in it."""
    call = Recorder()
    batcher = Batcher(call, max_batch=100, weight=lambda i: i, max_weight=10)
    answers = await asyncio.gather(*(batcher.submit(i) for i in [4, 5, 2, 30, 1, 1]))
    assert answers == [40, 50, 20, 300, 10, 10]
    assert call.batches == [[4, 5], [2], [30], [1, 1]]


async def test_an_error_of_the_call_is_every_callers_error() -> None:
    batcher = Batcher(Recorder(fail=ConnectionError("down")), max_batch=10)
    got = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert [type(e) for e in got] == [ConnectionError] * 3
    # The batcher is usable again afterwards.
    ok = Batcher(Recorder(), max_batch=10)
    assert await ok.submit(7) == 70


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    hold = asyncio.Event()
    call = Recorder(hold=hold)
    batcher = Batcher(call, max_batch=10)
    gone = asyncio.create_task(batcher.submit(1))
    stays = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0.01)
    gone.cancel()
    hold.set()
    assert await stays == 20
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert call.batches == [[1, 2]]


async def test_a_wrong_number_of_answers_is_an_error() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    batcher = Batcher(short, max_batch=10)
    got = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    assert all(isinstance(e, RuntimeError) for e in got)


async def test_batched_calls_wait_out_a_jobs_service_outage_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A batch that meets an outage fails for every submitter, and each waits it out on its
    own (its own run-time budget) and submits again: nobody's report is lost or failed."""
    import logging

    from bytereview.core import worker_runtime
    from bytereview.core.clients import channel
    from bytereview.core.workers import JobsCalls
    from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
    from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
    from tests.core.test_worker_runtime import unresponsive_peer

    caplog.set_level(logging.WARNING, logger=worker_runtime.__name__)
    with unresponsive_peer() as address:
        async with channel(address) as ch:
            calls = JobsCalls(worker_grpc.JobWorkerServiceStub(ch), (), timeout=0.3)

            async def begin_batch(tasks: list[str]) -> list[worker_pb.BeginTaskResponse]:
                requests = [worker_pb.BeginTaskRequest(task=t) for t in tasks]
                got = await calls.once(
                    calls.stub.BeginTasks, worker_pb.BeginTasksRequest(tasks=requests)
                )
                return list(got.tasks)

            begin = calls.batched(begin_batch, max_batch=10)
            waiting = [asyncio.create_task(begin(f"jobs/j/tasks/{i}")) for i in range(2)]
            await asyncio.sleep(2.5)
            assert not any(t.done() for t in waiting)  # still waiting the outage out
            for t in waiting:
                t.cancel()
    waits = [r for r in caplog.records if "the jobs service is unavailable" in r.getMessage()]
    assert len(waits) >= 4  # both submitters, each more than once
    assert all("DEADLINE_EXCEEDED" in r.getMessage() for r in waits)
