"""The extract worker: runs one task per message and reports the result or a classified failure."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

import grpc

from bytereview.core import (
    Settings,
    Storage,
    make_storage,
    streams,
    worker_metadata,
    worker_runtime,
)
from bytereview.core.limits import MAX_BATCH_BYTES, MAX_TASKS_PER_BATCH
from bytereview.core.outages import is_outage, object_missing
from bytereview.core.workers import JobsCalls, run_worker_process
from bytereview.extract.v1 import messages_pb2
from bytereview.jobs.v1 import resources_pb2
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.extract import metrics
from services.extract.base import (
    Extraction,
    ExtractionError,
    ExtractionRequest,
    Extractor,
)
from services.extract.bounds import combined_too_big
from services.extract.checking import checked
from services.extract.documents import documents
from services.extract.model.quota import SharedQuota, quota_key
from services.extract.model.ratecontrol import RateController
from services.extract.model.refused_settings import RefusalEpisodes
from services.extract.noop import NoopExtractor
from services.extract.offline.extractor import OfflineExtractor
from services.extract.reading.readable import Skipped, none_readable, readable
from services.extract.schema import Field, TypeInfo
from services.extract.server import extract_server

log = logging.getLogger(__name__)
FailureClass = worker_pb.ReportTaskFailureRequest.FailureClass


def make_extractor(settings: Settings, rate: RateController | None = None) -> Extractor:
    """Gemini when a key is configured, the offline extractor otherwise; the no-op stand-in
    when a benchmark asks for it (dev mode only: Settings refuses it in production). `rate`:
    the worker's limits, whose requests-per-minute budget Gemini's health probe draws on."""
    if settings.bench_extractor:
        log.warning("BYTEREVIEW_BENCH_EXTRACTOR=%s: benchmarks only", settings.bench_extractor)
        return NoopExtractor(fail=settings.bench_extractor == "noop-fail")
    key = settings.secret("gemini_api_key")
    if key:
        from services.extract.model.gemini import GeminiExtractor

        return GeminiExtractor(
            api_key=key,
            model=settings.gemini_model,
            base_url=settings.gemini_base_url,
            timeout_seconds=settings.gemini_timeout_seconds,
            max_output_tokens=settings.gemini_max_output_tokens,
            pace=rate.paced if rate is not None else None,
        )
    return OfflineExtractor()


def rate_controller(settings: Settings) -> RateController:
    """The worker's limits; the requests-per-minute ceiling is one budget for the whole
    pool (a schedule in NATS KV), not one per replica."""
    shared = None
    if settings.extract_rpm > 0:
        shared = SharedQuota(
            nats_url=settings.nats_url,
            rpm=settings.extract_rpm,
            key=quota_key(settings.gemini_model),
            replicas=settings.stream_replicas,
        )
    return RateController(
        max_concurrency=settings.extract_concurrency,
        max_wait_seconds=settings.extract_rate_limit_max_wait_seconds,
        shared=shared,
    )


def _model_down(exc: BaseException) -> bool:
    return isinstance(exc, ExtractionError) and exc.unavailable


def _why_model_down(exc: BaseException) -> str:
    """Why a handler waits on the model, when it is not the service down (its heartbeat's
    `waiting_on`, and each retry's log line: the full reason is logged once an episode)."""
    return exc.misconfigured if isinstance(exc, ExtractionError) else ""


def skipped_file(skipped: Skipped) -> resources_pb2.SkippedFile:
    """A file left out, as reported: the task's file (`jobs/{job}/files/{file}`), its
    path and why."""
    document = skipped.document
    return resources_pb2.SkippedFile(file=document.name, path=document.path, reason=skipped.reason)


def request_from(begin: worker_pb.BeginTaskResponse, storage: Storage) -> ExtractionRequest:
    return ExtractionRequest(
        fields=[Field(f.name, f.data_type, f.instruction) for f in begin.fields],
        types={d.id: TypeInfo(d.json_type, d.format, d.description) for d in begin.data_types},
        documents=documents(storage, begin.files),
        system_prompt=begin.system_prompt.text,
    )


class ExtractHandler:
    def __init__(
        self,
        *,
        storage: Storage,
        extractor: Extractor,
        calls: JobsCalls,
        rate: RateController,
    ) -> None:
        self._storage = storage
        self._extractor = extractor
        self._call = calls  # deadlines, and outages of the jobs service waited out in place
        self._jobs = calls.stub
        self._rate = rate
        self._refusals = RefusalEpisodes(extractor.name)
        # The tasks one fetch brought begin together, and results that arrive together are
        # reported together: one call and one transaction each, not one per task (#18).
        self._begin = calls.batched(self._begin_batch, max_batch=MAX_TASKS_PER_BATCH)
        self._report = calls.batched(
            self._report_batch,
            max_batch=MAX_TASKS_PER_BATCH,
            weight=lambda result: result.ByteSize(),
            max_weight=MAX_BATCH_BYTES,
        )
        self._report_failure = calls.batched(self._failure_batch, max_batch=MAX_TASKS_PER_BATCH)

    async def _begin_batch(self, tasks: list[str]) -> Sequence[worker_pb.BeginTaskResponse]:
        requests = [worker_pb.BeginTaskRequest(task=task) for task in tasks]
        try:
            got = await self._call.once(
                self._jobs.BeginTasks, worker_pb.BeginTasksRequest(tasks=requests)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            # A jobs service older than this worker (a rolling upgrade): one call per task.
            return await asyncio.gather(
                *(self._call.once(self._jobs.BeginTask, r) for r in requests)
            )
        return got.tasks

    async def _report_batch(
        self, results: list[worker_pb.ReportTaskResultRequest]
    ) -> Sequence[worker_pb.ReportTaskResultResponse]:
        try:
            got = await self._call.once(
                self._jobs.ReportTaskResults, worker_pb.ReportTaskResultsRequest(results=results)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            return await asyncio.gather(
                *(self._call.once(self._jobs.ReportTaskResult, r) for r in results)
            )
        return got.results

    async def _failure_batch(
        self, failures: list[worker_pb.ReportTaskFailureRequest]
    ) -> Sequence[worker_pb.ReportTaskFailureResponse]:
        try:
            got = await self._call.once(
                self._jobs.ReportTaskFailures,
                worker_pb.ReportTaskFailuresRequest(failures=failures),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            # A jobs service older than this worker (a rolling upgrade): one call per task.
            return await asyncio.gather(
                *(self._call.once(self._jobs.ReportTaskFailure, f) for f in failures)
            )
        return got.failures

    async def _model_call(self, request: ExtractionRequest) -> Extraction:
        """One call to the model under the rate limits; a refusal of the platform's settings
        (a rejected key, a model not found) is said once an episode."""
        try:
            extraction = await self._rate.call(lambda: self._extractor.extract(request))
        except ExtractionError as exc:
            if exc.misconfigured:
                self._refusals.refused(str(exc))
            raise
        self._refusals.accepted()
        return extraction

    async def _extract(self, request: ExtractionRequest) -> Extraction:
        """One extraction under the rate limits; output that misses the schema is tried twice."""
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                # The model's service down (unreachable, 502/503, or a 500/504/timeout with
                # its health probe failing too: model/health.py) or refusing the configured
                # credentials (an operator's to fix) is a dependency down: waited out in place
                # for as long as it takes, no attempt of the task used.
                extraction = await worker_runtime.outlast(
                    lambda: self._model_call(request),
                    is_down=_model_down,
                    what=f"the model ({self._extractor.name})",
                    why=_why_model_down,
                    # Its 500s, 504s and timeouts are the service's only when the health
                    # probe failed too: a stalled service's calls are its outage's time.
                    excuse_failed_calls=True,
                )
            except ExtractionError as exc:
                if exc.invalid_output and attempt == 1:
                    metrics.RETRIES.labels("invalid_output").inc()
                    continue
                if exc.invalid_output:
                    # The model keeps answering off-schema: more deliveries will not help.
                    exc.retryable = False
                raise
            finally:
                metrics.MODEL_SECONDS.labels(self._extractor.name).observe(
                    time.perf_counter() - started
                )
            metrics.TOKENS.labels("input").inc(extraction.input_tokens)
            metrics.TOKENS.labels("output").inc(extraction.output_tokens)
            return extraction
        raise AssertionError("unreachable")

    async def __call__(self, delivery: worker_runtime.Delivery) -> None:
        task = messages_pb2.ExtractTaskMessage.FromString(delivery.data).task
        try:
            await self._handle(task, delivery)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise worker_runtime.RetryLater(f"jobs service: {exc.details()}") from exc
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise worker_runtime.Permanent(f"{task} no longer exists") from exc
            raise

    async def _handle(self, task: str, delivery: worker_runtime.Delivery) -> None:
        begin = await self._begin(task)
        if not begin.proceed:
            log.info("dropping %s: %s", task, begin.reason)
            metrics.TASKS.labels("dropped").inc()
            return
        if begin.task.mode == resources_pb2.TASK_MODE_COMBINED:
            too_big = combined_too_big(begin.task.folder, [f.page_count for f in begin.files])
            if too_big:
                # No delivery would do better: fail it at once, saying why.
                await self._failed(task, begin.task.attempts, delivery, too_big, retryable=False)
                metrics.TASKS.labels("failed").inc()
                raise worker_runtime.Permanent(too_big)
        request = request_from(begin, self._storage)
        skipped: list[Skipped] = []
        try:
            if begin.task.mode == resources_pb2.TASK_MODE_COMBINED:
                # One unreadable file of the folder is left out, not the folder's result.
                readable_documents, skipped = await readable(request.documents)
                if not readable_documents:
                    raise none_readable(begin.task.folder, skipped)
                request = dataclasses.replace(request, documents=readable_documents)
            extraction = await self._extract(request)
        except ExtractionError as exc:
            await self._failed(
                task, begin.task.attempts, delivery, str(exc), retryable=exc.retryable
            )
            if exc.retryable and not delivery.is_last_attempt:
                metrics.TASKS.labels("retry").inc()
                metrics.RETRIES.labels("transient").inc()
                raise worker_runtime.RetryLater(str(exc), delay=exc.retry_after) from exc
            metrics.TASKS.labels("failed").inc()
            raise worker_runtime.Permanent(str(exc)) from exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_outage(exc):
                # Storage unreachable: not the task's fault. Run the handler again later
                # (BeginTask on a RUNNING task is a repeat, and nothing was reported).
                raise worker_runtime.DependencyDown(f"reading {task}'s files: {exc}") from exc
            if object_missing(exc):
                # Deleted (or never uploaded): no attempt will find it. Fail the task now,
                # saying why, rather than as an internal error retried to exhaustion.
                error = f"a file of the task is no longer in storage ({exc})"
                await self._failed(task, begin.task.attempts, delivery, error, retryable=False)
                metrics.TASKS.labels("failed").inc()
                raise worker_runtime.Permanent(error) from exc
            log.exception("extraction of %s failed", task)
            await self._failed(
                task, begin.task.attempts, delivery, f"internal error: {exc}", retryable=True
            )
            if delivery.is_last_attempt:
                metrics.TASKS.labels("failed").inc()
                raise worker_runtime.Permanent(str(exc)) from exc
            metrics.TASKS.labels("retry").inc()
            raise worker_runtime.RetryLater(str(exc)) from exc
        # The platform's own check of the answer, whichever extractor gave it: only the
        # job's fields, each a single value of its type within MAX_VALUE_CHARS; one that is
        # not is null and to review, and the task succeeds with the rest (checking.py).
        try:
            result = await checked(extraction, request.fields, request.documents)
        except Exception as exc:
            if is_outage(exc):  # storage went away after the extraction: run it again later
                raise worker_runtime.DependencyDown(f"reading {task}'s files: {exc}") from exc
            raise
        if result.emptied:
            log.info("%s: answers set to null, to review: %s", task, result.emptied)
        extraction = result.extraction
        answer = await self._report(
            worker_pb.ReportTaskResultRequest(
                task=task,
                values=result.struct(),
                value_sources=extraction.sources,
                input_tokens=extraction.input_tokens,
                output_tokens=extraction.output_tokens,
                extractor=self._extractor.name,
                assessments=result.assessments,
                skipped_files=[skipped_file(s) for s in skipped],
                # This attempt's, as with a failure: if this worker stalled and the message
                # was redelivered meanwhile, a refusal of this result fails not the new run.
                attempt=begin.task.attempts,
            ),
        )
        if answer.superseded:
            # Refused, and a later attempt runs the task: its delivery holds the message.
            metrics.TASKS.labels("superseded").inc()
            raise worker_runtime.Superseded(f"{task}: {answer.refused}")
        if answer.refused:
            # Past the jobs service's bounds (its bounds moved before this worker's, in a
            # rolling upgrade): it failed the task saying why. The same result would be
            # refused again, so the message is settled, not redelivered and paid for again.
            metrics.TASKS.labels("failed").inc()
            raise worker_runtime.Permanent(f"{task}: {answer.refused}")
        metrics.TASKS.labels("succeeded").inc()

    async def _failed(
        self,
        task: str,
        attempt: int,
        delivery: worker_runtime.Delivery,
        error: str,
        *,
        retryable: bool,
    ) -> None:
        if not retryable:
            failure = FailureClass.PERMANENT
        elif delivery.is_last_attempt:
            failure = FailureClass.EXHAUSTED
        else:
            failure = FailureClass.RETRYABLE
        # Batched with the failures other handlers report at the same time (#18).
        answer = await self._report_failure(
            worker_pb.ReportTaskFailureRequest(
                task=task,
                failure_class=failure,
                error=error,
                # This attempt's: if the message was redelivered while this worker stalled,
                # the run the other worker began is not failed by this one's late report.
                attempt=attempt,
            ),
        )
        if answer.superseded:
            # A later attempt runs the task: its delivery holds the message, and this one's
            # nak or term would settle it.
            metrics.TASKS.labels("superseded").inc()
            raise worker_runtime.Superseded(f"{task}: {error}")


async def serve(
    settings: Settings, stop: asyncio.Event, *, listening: Callable[[int], None] | None = None
) -> None:
    """Run the extract worker pool and the ExtractService until `stop`, then drain.

    `listening` hears the ExtractService's port once it serves (the address may ask for 0)."""
    storage = make_storage(settings)
    rate = rate_controller(settings)  # one quota, shared by the tasks and the previews
    extractor = make_extractor(settings, rate)
    try:
        await run_worker_process(
            settings,
            name="bytereview-extract",
            spec=streams.extract_queue(settings),
            concurrency=settings.extract_concurrency,
            handler=lambda calls: ExtractHandler(
                storage=storage, extractor=extractor, calls=calls, rate=rate
            ),
            server=lambda jobs: extract_server(
                settings,
                storage=storage,
                extractor=extractor,
                jobs=jobs,
                rate=rate,
                listening=listening,
            ),
            metadata=worker_metadata(settings),
            stop=stop,
        )
    finally:
        await extractor.aclose()
        if rate.shared is not None:
            await rate.shared.aclose()
