"""The extract worker: runs one task per message and reports the result or a classified failure."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import grpc
from google.protobuf import struct_pb2

from bytereview.core import Metadata, Settings, Storage, make_storage, streams, worker_metadata
from bytereview.core.workers import run_worker_process
from bytereview.extract.v1 import messages_pb2
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.extract import metrics
from services.extract.base import (
    Extraction,
    ExtractionError,
    ExtractionRequest,
    Extractor,
)
from services.extract.documents import documents
from services.extract.offline import OfflineExtractor
from services.extract.ratecontrol import RateController
from services.extract.schema import Field, TypeInfo, normalise_all
from services.extract.server import extract_server

log = logging.getLogger(__name__)
FailureClass = worker_pb.ReportTaskFailureRequest.FailureClass
RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


def make_extractor(settings: Settings) -> Extractor:
    """Gemini when a key is configured, the offline extractor otherwise."""
    key = settings.secret("gemini_api_key")
    if key:
        from services.extract.gemini import GeminiExtractor

        return GeminiExtractor(
            api_key=key,
            model=settings.gemini_model,
            base_url=settings.gemini_base_url,
            timeout_seconds=settings.gemini_timeout_seconds,
        )
    return OfflineExtractor()


def rate_controller(settings: Settings) -> RateController:
    return RateController(
        max_concurrency=settings.extract_concurrency,
        rpm=settings.extract_rpm,
        max_wait_seconds=settings.extract_rate_limit_max_wait_seconds,
    )


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
        jobs: worker_grpc.JobWorkerServiceAsyncStub,
        metadata: Metadata,
        rate: RateController,
    ) -> None:
        self._storage = storage
        self._extractor = extractor
        self._jobs = jobs
        self._metadata = metadata
        self._rate = rate

    async def _extract(self, request: ExtractionRequest) -> Extraction:
        """One extraction under the rate limits; output that misses the schema is tried twice."""
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                extraction = await self._rate.call(lambda: self._extractor.extract(request))
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

    async def __call__(self, delivery: streams.Delivery) -> None:
        task = messages_pb2.ExtractTaskMessage.FromString(delivery.data).task
        try:
            await self._handle(task, delivery)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in RETRYABLE_CODES:
                raise streams.RetryLater(f"jobs service: {exc.details()}") from exc
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise streams.Permanent(f"{task} no longer exists") from exc
            raise

    async def _handle(self, task: str, delivery: streams.Delivery) -> None:
        begin = await self._jobs.BeginTask(
            worker_pb.BeginTaskRequest(task=task), metadata=self._metadata
        )
        if not begin.proceed:
            log.info("dropping %s: %s", task, begin.reason)
            metrics.TASKS.labels("dropped").inc()
            return
        request = request_from(begin, self._storage)
        try:
            extraction = await self._extract(request)
        except ExtractionError as exc:
            await self._failed(task, delivery, str(exc), retryable=exc.retryable)
            if exc.retryable and not delivery.is_last_attempt:
                metrics.TASKS.labels("retry").inc()
                metrics.RETRIES.labels("transient").inc()
                raise streams.RetryLater(str(exc), delay=exc.retry_after) from exc
            metrics.TASKS.labels("failed").inc()
            raise streams.Permanent(str(exc)) from exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("extraction of %s failed", task)
            await self._failed(task, delivery, f"internal error: {exc}", retryable=True)
            if delivery.is_last_attempt:
                metrics.TASKS.labels("failed").inc()
                raise streams.Permanent(str(exc)) from exc
            metrics.TASKS.labels("retry").inc()
            raise streams.RetryLater(str(exc)) from exc
        values, problems = normalise_all(extraction.values, request.fields)
        if problems:
            log.info("%s: unreadable values set to null: %s", task, problems)
        struct = struct_pb2.Struct()
        struct.update(values)
        await self._jobs.ReportTaskResult(
            worker_pb.ReportTaskResultRequest(
                task=task,
                values=struct,
                value_sources=extraction.sources,
                input_tokens=extraction.input_tokens,
                output_tokens=extraction.output_tokens,
                extractor=self._extractor.name,
            ),
            metadata=self._metadata,
        )
        metrics.TASKS.labels("succeeded").inc()

    async def _failed(
        self, task: str, delivery: streams.Delivery, error: str, *, retryable: bool
    ) -> None:
        if not retryable:
            failure = FailureClass.PERMANENT
        elif delivery.is_last_attempt:
            failure = FailureClass.EXHAUSTED
        else:
            failure = FailureClass.RETRYABLE
        await self._jobs.ReportTaskFailure(
            worker_pb.ReportTaskFailureRequest(task=task, failure_class=failure, error=error),
            metadata=self._metadata,
        )


async def serve(
    settings: Settings, stop: asyncio.Event, *, listening: Callable[[int], None] | None = None
) -> None:
    """Run the extract worker pool and the ExtractService until `stop`, then drain.

    `listening` hears the ExtractService's port once it serves (the address may ask for 0)."""
    storage = make_storage(settings)
    extractor = make_extractor(settings)
    rate = rate_controller(settings)  # one quota, shared by the tasks and the previews
    try:
        await run_worker_process(
            settings,
            name="bytereview-extract",
            spec=streams.extract_queue(settings),
            concurrency=settings.extract_concurrency,
            handler=lambda jobs: ExtractHandler(
                storage=storage,
                extractor=extractor,
                jobs=jobs,
                metadata=worker_metadata(settings),
                rate=rate,
            ),
            server=lambda jobs: extract_server(
                settings,
                storage=storage,
                extractor=extractor,
                jobs=jobs,
                rate=rate,
                listening=listening,
            ),
            stop=stop,
        )
    finally:
        await extractor.aclose()
