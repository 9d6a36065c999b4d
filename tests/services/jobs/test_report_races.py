"""Report batches racing one another and the job's other writers on PostgreSQL (real
concurrency, through the jobs service): result and failure batches lock their tasks' rows
first and the job's row last (TaskReports._job_last), the job's commands lock the job's row
first. Whatever the interleaving, the job's counters equal its tasks' rows, each
task has one state and at most one result, and the job ends once."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import struct_pb2
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bytereview.core import streams
from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.jobs.store import db
from tests.conftest import USER
from tests.services.jobs.helpers import (
    WORKER,
    lock_waiter,
    pull,
    ready_job,
    running_tasks,
    started_tasks,
)

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

FIELD = [pb.JobField(name="t", data_type="text")]
FINAL = {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELLED"}
Failure = worker_pb.ReportTaskFailureRequest.FailureClass


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test's database, to read its rows between the races."""
    engine = db.create_engine(database_url)
    yield engine
    await engine.dispose()


def _result(task: str, confidence: float = 0.1) -> worker_pb.ReportTaskResultRequest:
    values = struct_pb2.Struct()
    values.update({"t": task})
    # Low confidence: the value needs review, so the job's review count moves too.
    return worker_pb.ReportTaskResultRequest(
        task=task,
        values=values,
        extractor="test",
        assessments={"t": pb.ValueAssessment(confidence=confidence, verified=True)},
    )


async def _report(worker_stub: WorkerStub, tasks: list[str], confidence: float = 0.1) -> list[bool]:
    got = await worker_stub.ReportTaskResults(
        worker_pb.ReportTaskResultsRequest(results=[_result(t, confidence) for t in tasks]),
        metadata=WORKER,
    )
    return [r.applied for r in got.results]


async def _fail(
    worker_stub: WorkerStub, tasks: list[tuple[str, Failure.ValueType]]
) -> list[tuple[bool, int]]:
    got = await worker_stub.ReportTaskFailures(
        worker_pb.ReportTaskFailuresRequest(
            failures=[
                worker_pb.ReportTaskFailureRequest(task=t, failure_class=c, error="boom")
                for t, c in tasks
            ]
        ),
        metadata=WORKER,
    )
    return [(f.applied, f.status) for f in got.failures]


async def _begin(worker_stub: WorkerStub, tasks: list[str]) -> list[bool]:
    got = await worker_stub.BeginTasks(
        worker_pb.BeginTasksRequest(tasks=[worker_pb.BeginTaskRequest(task=t) for t in tasks]),
        metadata=WORKER,
    )
    return [b.proceed for b in got.tasks]


async def _state(engine: AsyncEngine, job: str, *, rerun: bool = False) -> dict[str, str]:
    """Check every invariant a job's rows keep between transactions; returns its tasks'
    statuses (short task id -> status). With `rerun`, tasks re-run keep their result."""
    job_id = job.split("/")[1]
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT status, tasks_succeeded, tasks_failed, values_needing_review,"
                    " event_sequence FROM extraction_jobs WHERE id = :j"
                ),
                {"j": job_id},
            )
        ).one()
        tasks: dict[str, str] = dict(
            (
                await conn.execute(
                    text("SELECT id, status FROM extraction_tasks WHERE job_id = :j"),
                    {"j": job_id},
                )
            ).all()
        )
        results = Counter(
            (
                await conn.scalars(
                    text("SELECT task_id FROM extraction_results WHERE job_id = :j"),
                    {"j": job_id},
                )
            ).all()
        )
        review_sum = await conn.scalar(
            text("SELECT COALESCE(SUM(review_count), 0) FROM extraction_results WHERE job_id = :j"),
            {"j": job_id},
        )
        flagged = await conn.scalar(
            text("SELECT COUNT(*) FROM review_items WHERE job_id = :j AND flagged"),
            {"j": job_id},
        )
        events = (
            await conn.execute(
                text(
                    "SELECT sequence, kind, to_status FROM job_events WHERE job_id = :j"
                    " ORDER BY sequence"
                ),
                {"j": job_id},
            )
        ).all()
    status, succeeded, failed, needing, last = row
    by_status = Counter(tasks.values())
    assert succeeded == by_status["SUCCEEDED"], (succeeded, by_status)
    assert failed == by_status["FAILED"], (failed, by_status)
    # One result per task, and only for the tasks that succeeded.
    succeeded_ids = {t for t, s in tasks.items() if s == "SUCCEEDED"}
    if rerun:
        assert set(results) >= succeeded_ids, (results, tasks)
    else:
        assert set(results) == succeeded_ids, (results, tasks)
    assert set(results.values()) <= {1}
    # The job's review count is its results' counts, and each flagged value is in the queue.
    assert needing == review_sum == flagged, (needing, review_sum, flagged)
    # Events numbered 1..event_sequence, none missing nor twice.
    assert [e.sequence for e in events] == list(range(1, last + 1))
    # The job ends once each time it runs: never two ends without a move in between (a
    # re-run's), and the last of its moves is where it is.
    moves = [e.to_status for e in events if e.kind == "job.status"]
    assert not [a for a, b in itertools.pairwise(moves) if a in FINAL and b in FINAL], moves
    if status in FINAL:
        assert moves[-1] == status
    return {t: s for t, s in tasks.items()}


async def _quick_deadlocks(engine: AsyncEngine) -> None:
    """PostgreSQL looks for a lock cycle after a wait of `deadlock_timeout` (1 s): 50 ms in
    the connections opened from now on, so a test meeting several cycles stays quick."""
    await _deadlock_timeout(engine, "50ms")


async def _deadlock_timeout(engine: AsyncEngine, timeout: str) -> None:
    """`deadlock_timeout` in the connections opened from now on."""
    async with engine.begin() as conn:
        name = await conn.scalar(text("SELECT current_database()"))
        await conn.execute(text(f"ALTER DATABASE \"{name}\" SET deadlock_timeout = '{timeout}'"))


def _short(task: str) -> str:
    return task.rsplit("/", 1)[1]


async def test_overlapping_result_batches_apply_each_task_once(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """Four workers report overlapping batches (repeats within a batch, tasks settled
    already) at once, round after round; the last round's batches are disjoint, so each
    must see the others' tasks settled for exactly one of them to end the job."""
    rng = random.Random(1)
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELD, 24)
    applied: Counter[str] = Counter()
    rounds = [tasks[i : i + 4] for i in range(0, 20, 4)]
    for round_tasks in rounds:
        done = [t for t in tasks if t in applied]
        batches = [
            rng.sample(round_tasks, rng.randint(1, 4))
            + rng.sample(round_tasks, 1)
            + rng.sample(done, min(len(done), 2))
            for _ in range(4)
        ]
        for batch in batches:
            rng.shuffle(batch)
        answers = await asyncio.gather(*(_report(worker_stub, b) for b in batches))
        for batch, got in zip(batches, answers, strict=True):
            applied.update(t for t, a in zip(batch, got, strict=True) if a)
        await _state(engine, job)
    assert all(applied[t] == 1 for t in applied)
    rest = [t for t in tasks if t not in applied]  # tasks[20:] and any not drawn
    answers = await asyncio.gather(*(_report(worker_stub, [t]) for t in rest))
    assert answers == [[True]] * len(rest)
    applied.update(rest)
    assert applied == Counter(tasks)
    state = await _state(engine, job)
    assert Counter(state.values()) == {"SUCCEEDED": 24}
    got_job = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got_job.status == pb.Job.COMPLETED


async def test_results_and_failures_of_the_same_tasks_racing_settle_each_once(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """A result batch and failure batches (each the tasks' rows, then the job's) report the
    same tasks at once: each task takes exactly one of the reports, whichever came first,
    and no call fails (a lock cycle between them is broken by PostgreSQL and must be run
    again, not returned to the worker as an error)."""
    rng = random.Random(2)
    await _quick_deadlocks(engine)
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELD, 24)
    for i in range(0, 24, 4):
        batch = tasks[i : i + 4]
        shuffled = rng.sample(batch, 4)
        permanent = [(t, Failure.PERMANENT) for t in rng.sample(batch, 2)]
        retryable = [(t, Failure.RETRYABLE) for t in rng.sample(batch, 2)]
        got_results, got_permanent, got_retryable, got_single = await asyncio.gather(
            _report(worker_stub, shuffled),
            _fail(worker_stub, permanent),
            _fail(worker_stub, retryable),
            _report(worker_stub, batch[:1]),
        )
        applied: Counter[str] = Counter()
        applied.update(t for t, a in zip(shuffled, got_results, strict=True) if a)
        applied.update(t for (t, _), (a, _) in zip(permanent, got_permanent, strict=True) if a)
        applied.update(t for (t, _), (a, _) in zip(retryable, got_retryable, strict=True) if a)
        applied.update(t for t, a in zip(batch[:1], got_single, strict=True) if a)
        assert applied == Counter(batch), applied  # every task took one report
        state = await _state(engine, job)
        wanted = {_short(t): "SUCCEEDED" for t in shuffled if t in applied}
        for (t, _), (a, status) in zip(permanent, got_permanent, strict=True):
            if a:
                wanted[_short(t)] = "FAILED"
                assert status == pb.Task.FAILED
        for (t, _), (a, status) in zip(retryable, got_retryable, strict=True):
            if a:
                wanted[_short(t)] = "QUEUED"
                assert status == pb.Task.QUEUED
        assert {_short(t): state[_short(t)] for t in batch} == wanted
    # The tasks queued again run and succeed; the job then ends, once.
    queued = [t for t in tasks if state[_short(t)] == "QUEUED"]
    assert await _begin(worker_stub, queued) == [True] * len(queued)
    assert await _report(worker_stub, queued) == [True] * len(queued)
    state = await _state(engine, job)
    assert not {"RUNNING", "QUEUED"} & set(state.values())
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.status in (pb.Job.PARTIALLY_COMPLETED, pb.Job.COMPLETED)


async def test_cancel_racing_reports_and_begins_leaves_the_rows_consistent(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """CancelJob while workers report results and failures of its running tasks and begin
    its queued ones. Whichever came first, the counters equal the tasks' rows, only tasks
    that succeeded have a result, the job ends once (CANCELLED); once CancelJob answered,
    no report applies and no task begins, and its open tasks end CANCELLED."""
    rng = random.Random(3)
    await _quick_deadlocks(engine)
    for _ in range(8):
        job = await ready_job(job_stub, worker_stub, settings, files=12)
        tasks = sorted(await started_tasks(job_stub, settings, job, FIELD, 12))
        running, queued = tasks[:8], tasks[8:]
        assert await _begin(worker_stub, running) == [True] * 8
        await asyncio.gather(
            _report(worker_stub, rng.sample(running, 4)),
            _report(worker_stub, rng.sample(running, 4)),
            _fail(worker_stub, [(t, Failure.PERMANENT) for t in rng.sample(running, 2)]),
            job_stub.CancelJob(jobs_pb.CancelJobRequest(name=job), metadata=USER),
            _begin(worker_stub, queued),
            _fail(worker_stub, [(t, Failure.RETRYABLE) for t in rng.sample(running, 2)]),
        )
        before = await _state(engine, job)
        assert await _report(worker_stub, tasks) == [False] * 12
        assert await _begin(worker_stub, tasks) == [False] * 12
        failed = await _fail(worker_stub, [(t, Failure.PERMANENT) for t in tasks])
        assert [a for a, _ in failed] == [False] * 12
        # Only the cancellation of its open tasks (in the background) moved a task since.
        after = await _state(engine, job)
        for t, s in before.items():
            assert after[t] in ((s, "CANCELLED") if s in ("QUEUED", "RUNNING") else (s,))
        async with asyncio.timeout(10):
            while True:
                if not {"QUEUED", "RUNNING"} & set((await _state(engine, job)).values()):
                    break
                await asyncio.sleep(0.1)
        got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
        assert got.status == pb.Job.CANCELLED


async def test_pause_racing_the_last_reports_ends_the_job_once_resumed(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """PauseJob racing the report batches that settle a job's last tasks: reports of a
    paused job's running tasks apply, and the job ends then (the pause lost the race) or on
    ResumeJob (every task settled while it was paused), exactly once."""
    for _ in range(4):
        job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELD, 6)
        got = await asyncio.gather(
            _report(worker_stub, tasks[:3]),
            _report(worker_stub, tasks[3:]),
            job_stub.PauseJob(jobs_pb.PauseJobRequest(name=job), metadata=USER),
            return_exceptions=True,
        )
        assert [got[0], got[1]] == [[True] * 3, [True] * 3]
        if isinstance(got[2], BaseException):
            # Too late: the job had ended.
            assert isinstance(got[2], grpc.aio.AioRpcError)
            assert got[2].code() == grpc.StatusCode.FAILED_PRECONDITION
        else:
            await job_stub.ResumeJob(jobs_pb.ResumeJobRequest(name=job), metadata=USER)
        state = await _state(engine, job)
        assert set(state.values()) == {"SUCCEEDED"}
        got_job = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
        assert got_job.status == pb.Job.COMPLETED


async def test_batches_spanning_two_jobs_racing_settle_each_task_once(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """Result and failure batches each naming tasks of two jobs, in any order, at once: a
    batch locks a job's tasks and then that job, job after job in one order, so batches of
    both kinds never wait on one another in a cycle; each task settles once, in both jobs."""
    rng = random.Random(4)
    await _quick_deadlocks(engine)
    first, first_tasks = await running_tasks(job_stub, worker_stub, settings, FIELD, 12)
    second, second_tasks = await running_tasks(job_stub, worker_stub, settings, FIELD, 12)
    for i in range(0, 12, 3):
        both = first_tasks[i : i + 3] + second_tasks[i : i + 3]
        results = [rng.sample(both, 4) for _ in range(3)]
        failures = [
            [(t, rng.choice((Failure.PERMANENT, Failure.RETRYABLE))) for t in rng.sample(both, 3)]
            for _ in range(2)
        ]
        answers, failure_answers = await asyncio.gather(
            asyncio.gather(*(_report(worker_stub, b) for b in results)),
            asyncio.gather(*(_fail(worker_stub, b) for b in failures)),
        )
        applied: Counter[str] = Counter()
        for batch, got in zip(results, answers, strict=True):
            applied.update(t for t, a in zip(batch, got, strict=True) if a)
        for failed, got_failed in zip(failures, failure_answers, strict=True):
            applied.update(t for (t, _), (a, _) in zip(failed, got_failed, strict=True) if a)
        assert set(applied.values()) <= {1}, applied
        state = await _state(engine, first) | await _state(engine, second)
        # A task no report applied to is still running; none is settled twice.
        assert {t for t in both if state[_short(t)] != "RUNNING"} == set(applied)


async def test_reports_of_re_run_tasks_racing_keep_the_review_count(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """A finished job's results re-run: workers report the re-run tasks at once, in
    overlapping batches, some answers needing review and some not, while failures of the
    same tasks race them. A re-run's result changes the job's review count as it is
    written (its row locked before): the count stays the sum of its results' and the
    number of flagged values in the review queue, and each task takes one report."""
    rng = random.Random(5)
    await _quick_deadlocks(engine)
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELD, 12)
    assert await _report(worker_stub, tasks) == [True] * 12
    assert Counter((await _state(engine, job)).values()) == {"SUCCEEDED": 12}
    listed = await job_stub.ListResults(
        jobs_pb.ListResultsRequest(parent=job, page_size=100), metadata=USER
    )
    for round_ in range(3):
        await job_stub.RerunJob(
            jobs_pb.RerunJobRequest(name=job, results=[r.name for r in listed.results], force=True),
            metadata=USER,
        )
        state = await _state(engine, job, rerun=True)
        again = [t for t in tasks if state[_short(t)] in ("SUCCEEDED", "FAILED")]
        assert not again  # every task queued again
        assert await _begin(worker_stub, tasks) == [True] * 12
        answers = await asyncio.gather(
            _report(worker_stub, rng.sample(tasks, 8), confidence=0.99),
            _report(worker_stub, rng.sample(tasks, 8), confidence=0.1),
            _report(worker_stub, rng.sample(tasks, 8), confidence=0.99),
            _fail(worker_stub, [(t, Failure.PERMANENT) for t in rng.sample(tasks, 2)]),
        )
        state = await _state(engine, job, rerun=True)
        # The rest succeed so that the job finishes and can be re-run again.
        rest = [t for t in tasks if state[_short(t)] == "RUNNING"]
        assert await _report(worker_stub, rest) == [True] * len(rest)
        state = await _state(engine, job, rerun=True)
        assert "RUNNING" not in state.values(), (round_, answers)


async def test_a_failure_report_aborted_in_a_lock_cycle_runs_again(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """A path locking a job's row and then one of its tasks' (a retry of failed tasks, an
    admin's retry of a dead letter) can still meet a report, which locks the task first, in
    a cycle. PostgreSQL aborts one of them; the report is run again, and the worker gets
    its answer, not INTERNAL. Here another transaction holds the job's row, the report
    waits for it holding the task's, and the other transaction then writes the task."""
    # PostgreSQL looks for a cycle once, deadlock_timeout after a wait began: the report's
    # look must come after this transaction's write closed the cycle. At 50 ms it once came
    # before it (a loaded machine), found none, and this transaction was the one aborted.
    await _deadlock_timeout(engine, "2s")
    job, [task] = await running_tasks(job_stub, worker_stub, settings, FIELD, 1)
    async with engine.begin() as holder:
        # The report, not this transaction, is the one to find the cycle and be aborted.
        await holder.execute(text("SET LOCAL deadlock_timeout = '60s'"))
        await holder.execute(
            text("SELECT id FROM extraction_jobs WHERE id = :j FOR UPDATE"),
            {"j": job.split("/")[1]},
        )
        failing = asyncio.create_task(_fail(worker_stub, [(task, Failure.PERMANENT)]))
        # The batch's last step, its task's row written: the job's row.
        await lock_waiter(engine, "%FROM extraction_jobs%FOR NO KEY UPDATE%")
        await holder.execute(
            text("UPDATE extraction_tasks SET last_error = 'held' WHERE id = :t"),
            {"t": _short(task)},
        )
    assert await failing == [(True, pb.Task.FAILED)]
    assert set((await _state(engine, job)).values()) == {"FAILED"}
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.status == pb.Job.FAILED


async def test_retry_of_failed_tasks_racing_late_reports_and_begins(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """RetryFailedTasks on a partly completed job while late reports of its failed tasks
    and begins of them arrive: a late report of a failed task applies only to the attempt
    the retry began, a task begins only once queued again, and once every task has run
    again the job ends once more, its counters those of its tasks."""
    await _quick_deadlocks(engine)
    for _ in range(3):
        job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELD, 8)
        ok, bad = tasks[:4], tasks[4:]
        assert await _report(worker_stub, ok) == [True] * 4
        failed = await _fail(worker_stub, [(t, Failure.PERMANENT) for t in bad])
        assert failed == [(True, pb.Task.FAILED)] * 4
        _, late, late_failures, begun = await asyncio.gather(
            job_stub.RetryFailedTasks(jobs_pb.RetryFailedTasksRequest(name=job), metadata=USER),
            _report(worker_stub, tasks),
            _fail(worker_stub, [(t, Failure.RETRYABLE) for t in bad]),
            _begin(worker_stub, bad),
        )
        # The succeeded tasks' late results never apply.
        assert late[:4] == [False] * 4
        # Nothing tells one attempt's report from the next one's: a late report or failure
        # of a failed task applies only when the retry had queued it again and it had begun
        # (under load the begin may come first: it once failed here 3 runs in 14).
        for i, b in enumerate(begun):
            assert b or not (late[4 + i] or late_failures[i][0]), (late, late_failures, begun)
        state = await _state(engine, job)
        for t, b in zip(bad, begun, strict=True):
            if b:
                # Began only once the retry had queued it again; a late report or
                # retryable failure may have moved it on since.
                assert state[_short(t)] in {"RUNNING", "SUCCEEDED", "QUEUED"}
            else:
                assert state[_short(t)] == "QUEUED"  # queued by the retry, nothing since
        unfinished = [t for t in bad if state[_short(t)] != "SUCCEEDED"]
        queued = [t for t in unfinished if state[_short(t)] == "QUEUED"]
        assert await _begin(worker_stub, queued) == [True] * len(queued)
        assert await _report(worker_stub, unfinished) == [True] * len(unfinished)
        assert set((await _state(engine, job)).values()) == {"SUCCEEDED"}
        got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
        assert got.status == pb.Job.COMPLETED
        # The retry's messages, off the queue the next job's tasks are taken from.
        assert len(await pull(settings, streams.extract_queue(settings), 4)) == 4


async def test_begins_results_and_retries_of_the_same_tasks_churning(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings, engine: AsyncEngine
) -> None:
    """Workers churning on the same tasks, round after round: begins (a queued task starts,
    a running one is redelivered), results and retryable failures of them all at once. A
    task queued again by a failure may start again before a result of it is looked at;
    whatever the order, a task succeeds once, its result is its only one, and the job's
    counters and end follow its tasks."""
    rng = random.Random(6)
    await _quick_deadlocks(engine)
    job, tasks = await running_tasks(job_stub, worker_stub, settings, FIELD, 8)
    succeeded: Counter[str] = Counter()
    for _ in range(12):
        open_tasks = [t for t, s in (await _state(engine, job)).items() if s != "SUCCEEDED"]
        if not open_tasks:
            break
        names = [t for t in tasks if _short(t) in open_tasks]
        retry = [(t, Failure.RETRYABLE) for t in rng.sample(names, max(1, len(names) // 2))]
        first = rng.sample(names, max(1, len(names) // 2))
        second = rng.sample(names, max(1, len(names) // 3))
        _, got_first, _, got_second = await asyncio.gather(
            _begin(worker_stub, rng.sample(names, len(names))),
            _report(worker_stub, first),
            _fail(worker_stub, retry),
            _report(worker_stub, second),
        )
        succeeded.update(t for t, a in zip(first, got_first, strict=True) if a)
        succeeded.update(t for t, a in zip(second, got_second, strict=True) if a)
        assert set(succeeded.values()) <= {1}, succeeded
        await _begin(worker_stub, names)  # those queued again run again
    rest = [t for t, s in (await _state(engine, job)).items() if s != "SUCCEEDED"]
    names = [t for t in tasks if _short(t) in rest]
    assert await _begin(worker_stub, names) == [True] * len(names)
    assert await _report(worker_stub, names) == [True] * len(names)
    succeeded.update(names)
    assert succeeded == Counter(tasks)  # every task's result applied once
    assert set((await _state(engine, job)).values()) == {"SUCCEEDED"}
    got = await job_stub.GetJob(jobs_pb.GetJobRequest(name=job), metadata=USER)
    assert got.status == pb.Job.COMPLETED
