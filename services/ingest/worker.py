"""The ingest worker: analyses each queued file and unpacks archives, reporting over gRPC."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc

from bytereview.core import Metadata, Settings, Storage, make_storage, streams, worker_metadata
from bytereview.core.workers import run_worker_process
from bytereview.ingest.v1 import messages_pb2
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.ingest import metrics
from services.ingest.analysis import Analysis, analyse
from services.ingest.server import ingest_server
from services.ingest.unpack import ArchiveUnpacker, UnpackLimits

log = logging.getLogger(__name__)

RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


def _report(file: str, analysis: Analysis) -> worker_pb.ReportFileAnalysisRequest:
    return worker_pb.ReportFileAnalysisRequest(
        file=file,
        status=pb.SourceFile.Status.Value(analysis.status),
        media_type=analysis.media_type,
        size_bytes=analysis.size_bytes,
        sha256=analysis.sha256,
        page_count=analysis.page_count,
        width=analysis.width,
        height=analysis.height,
        error=analysis.error,
    )


class IngestHandler:
    """Handles one IngestFileMessage. Safe to run again for the same file."""

    def __init__(
        self,
        *,
        storage: Storage,
        jobs: worker_grpc.JobWorkerServiceAsyncStub,
        metadata: Metadata,
        limits: UnpackLimits,
    ) -> None:
        self._storage = storage
        self._jobs = jobs
        self._metadata = metadata
        self._limits = limits

    async def __call__(self, delivery: streams.Delivery) -> None:
        message = messages_pb2.IngestFileMessage.FromString(delivery.data)
        try:
            await self._handle(message, delivery)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in RETRYABLE_CODES:
                raise streams.RetryLater(f"jobs service: {exc.details()}") from exc
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise streams.Permanent(f"{message.file} no longer exists") from exc
            raise

    async def _handle(
        self, message: messages_pb2.IngestFileMessage, delivery: streams.Delivery
    ) -> None:
        try:
            analysis = await asyncio.to_thread(analyse, self._storage, message.storage_key)
        except FileNotFoundError:
            analysis = Analysis("FAILED", "", 0, "", error="the uploaded bytes are missing")
        except Exception as exc:
            if not delivery.is_last_attempt:
                raise
            log.exception("analysis of %s failed on the last attempt", message.file)
            analysis = Analysis("FAILED", "", 0, "", error=f"analysis failed: {exc}")
        if analysis.archive:
            analysis = await self._unpack(message, analysis)
        await self._jobs.ReportFileAnalysis(
            _report(message.file, analysis), metadata=self._metadata
        )

    async def _unpack(self, message: messages_pb2.IngestFileMessage, found: Analysis) -> Analysis:
        if message.depth >= self._limits.max_depth:
            return _archive_result(
                found,
                "FAILED",
                f"archives nested deeper than {self._limits.max_depth} levels are refused",
            )
        job_prefix = "/".join(message.file.split("/")[:2]) + "/"
        unpacker = ArchiveUnpacker(
            storage=self._storage,
            limits=self._limits,
            archive_key=message.storage_key,
            target_prefix=f"{job_prefix}entries/{message.file.rsplit('/', 1)[-1]}/",
        )

        async def report(batch: list[worker_pb.ArchiveEntry]) -> None:
            await self._jobs.ReportArchiveEntries(
                worker_pb.ReportArchiveEntriesRequest(archive=message.file, entries=batch),
                metadata=self._metadata,
            )

        outcome = await unpacker.run(report)
        metrics.ENTRIES.inc(outcome.entries)
        metrics.BYTES.inc(outcome.bytes_written)
        if outcome.error:
            return _archive_result(found, "FAILED", outcome.error)
        return _archive_result(found, "UNPACKED", outcome.summary)


def _archive_result(found: Analysis, status: str, message: str) -> Analysis:
    return Analysis(status, found.media_type, found.size_bytes, found.sha256, error=message)


async def serve(
    settings: Settings, stop: asyncio.Event, *, listening: Callable[[int], None] | None = None
) -> None:
    """Run the ingest worker pool (and InspectArchive) until `stop` is set, then drain.

    `listening` hears the IngestService's port once it serves (the address may ask for 0)."""
    storage = make_storage(settings)
    limits = UnpackLimits.from_settings(settings)
    await run_worker_process(
        settings,
        name="bytereview-ingest",
        spec=streams.ingest_queue(settings),
        concurrency=settings.ingest_concurrency,
        handler=lambda jobs: IngestHandler(
            storage=storage, jobs=jobs, metadata=worker_metadata(settings), limits=limits
        ),
        server=lambda jobs: ingest_server(
            settings, storage=storage, limits=limits, jobs=jobs, listening=listening
        ),
        stop=stop,
    )
