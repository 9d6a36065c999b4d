"""Reports from the unpacker to the jobs service, over gRPC (JobWorkerService)."""

from __future__ import annotations

from collections.abc import Sequence

from bytereview.core.workers import JobsCalls
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.ingest import metrics
from services.ingest.unpack import Outcome, Registered


class JobsReporter:
    """Registers unpacked entries and settles nested archives; every call is idempotent in
    the jobs service, so a redelivered archive reports the same things again harmlessly."""

    def __init__(self, calls: JobsCalls) -> None:
        self._call = calls  # deadlines; an unreachable jobs service is waited out in place
        self._jobs = calls.stub

    async def entries(self, archive: str, batch: Sequence[worker_pb.ArchiveEntry]) -> Registered:
        response = await self._call(
            self._jobs.ReportArchiveEntries,
            worker_pb.ReportArchiveEntriesRequest(archive=archive, entries=batch),
        )
        return Registered(files=list(response.files), refused=response.refused)

    async def unpacked(self, file: str, entry: worker_pb.ArchiveEntry, outcome: Outcome) -> None:
        metrics.ENTRIES.inc(outcome.entries)
        metrics.BYTES.inc(outcome.bytes_written)
        await self._call(
            self._jobs.ReportFileAnalysis,
            worker_pb.ReportFileAnalysisRequest(
                file=file,
                status=pb.SourceFile.FAILED if outcome.error else pb.SourceFile.UNPACKED,
                media_type=entry.media_type,
                size_bytes=entry.size_bytes,
                sha256=entry.sha256,
                error=outcome.error or outcome.summary,
            ),
        )
