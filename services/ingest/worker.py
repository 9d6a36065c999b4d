"""The ingest worker: analyses each queued file and unpacks archives, reporting over gRPC."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc

from bytereview.core import (
    Settings,
    Storage,
    make_storage,
    storage_keys,
    streams,
    worker_metadata,
    worker_runtime,
)
from bytereview.core.outages import is_outage
from bytereview.core.workers import JobsCalls, run_worker_process
from bytereview.ingest.v1 import messages_pb2
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.ingest import metrics
from services.ingest.analysis import Analysis, analyse
from services.ingest.reporter import JobsReporter
from services.ingest.server import ingest_server
from services.ingest.unpack import ArchiveUnpacker, StorageFailure, UnpackLimits

log = logging.getLogger(__name__)


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
        calls: JobsCalls,
        limits: UnpackLimits,
    ) -> None:
        self._storage = storage
        self._call = calls  # deadlines, and outages of the jobs service waited out in place
        self._jobs = calls.stub
        self._limits = limits

    async def __call__(self, delivery: worker_runtime.Delivery) -> None:
        message = messages_pb2.IngestFileMessage.FromString(delivery.data)
        try:
            await self._handle(message, delivery)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise worker_runtime.RetryLater(f"jobs service: {exc.details()}") from exc
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise worker_runtime.Permanent(f"{message.file} no longer exists") from exc
            raise
        except StorageFailure as exc:
            # Storage unreachable while unpacking: the archive is fine, wait for storage.
            raise worker_runtime.DependencyDown(f"{message.file}: {exc}") from exc
        except Exception as exc:
            if is_outage(exc):
                # Storage unreachable: analysis and unpacking are safe to run again.
                raise worker_runtime.DependencyDown(f"{message.file}: {exc}") from exc
            raise

    async def _handle(
        self, message: messages_pb2.IngestFileMessage, delivery: worker_runtime.Delivery
    ) -> None:
        try:
            analysis = await asyncio.to_thread(
                analyse, self._storage, message.storage_key, self._limits
            )
        except FileNotFoundError:
            analysis = Analysis("FAILED", "", 0, "", error="the uploaded bytes are missing")
        except Exception as exc:
            if not delivery.is_last_attempt or is_outage(exc):
                raise
            log.exception("analysis of %s failed on the last attempt", message.file)
            analysis = Analysis("FAILED", "", 0, "", error=f"analysis failed: {exc}")
        if analysis.archive:
            analysis = await self._unpack(message, analysis)
        await self._call(self._jobs.ReportFileAnalysis, _report(message.file, analysis))

    async def _unpack(self, message: messages_pb2.IngestFileMessage, found: Analysis) -> Analysis:
        if message.depth >= self._limits.max_depth:
            return _archive_result(
                found,
                "FAILED",
                f"archives nested deeper than {self._limits.max_depth} levels are refused",
            )
        job_id = message.file.split("/")[1]  # jobs/{job}/files/{file}

        def entries_prefix(file: str) -> str:
            return storage_keys.entry_prefix(job_id, file.rsplit("/", 1)[-1])

        unpacker = ArchiveUnpacker(
            storage=self._storage,
            limits=self._limits,
            archive_key=message.storage_key,
            target_prefix=entries_prefix(message.file),
            archive_name=message.file,
            depth=message.depth,
            prefix_for=entries_prefix,
        )
        outcome = await unpacker.run(JobsReporter(self._call))
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
        handler=lambda calls: IngestHandler(storage=storage, calls=calls, limits=limits),
        server=lambda jobs: ingest_server(
            settings, storage=storage, limits=limits, jobs=jobs, listening=listening
        ),
        metadata=worker_metadata(settings),
        stop=stop,
    )
