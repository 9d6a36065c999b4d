"""What a dead letter means for the job: its file or task FAILED with a readable reason."""

from __future__ import annotations

from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.ingest.v1 import messages_pb2 as ingest_messages
from services.jobs.domain import names
from services.jobs.domain.jobs.ingest_reports import FileAnalysis, IngestReports
from services.jobs.domain.status import FileStatus
from services.jobs.domain.tasks.reports import TaskReports


class DeadLetters:
    """Handlers for messaging.DeadLetterMonitor, one per work queue."""

    def __init__(self, files: IngestReports, tasks: TaskReports) -> None:
        self._files = files
        self._tasks = tasks

    async def ingest(self, data: bytes, why: str) -> None:
        file = ingest_messages.IngestFileMessage.FromString(data).file
        ids = names.parse("file", file)
        await self._files.file_analysis(
            ids["job"], ids["file"], FileAnalysis(FileStatus.FAILED, error=why)
        )

    async def extract(self, data: bytes, why: str) -> None:
        task = extract_messages.ExtractTaskMessage.FromString(data).task
        ids = names.parse("task", task)
        await self._tasks.dead_letter_task(ids["job"], ids["task"], error=why)
