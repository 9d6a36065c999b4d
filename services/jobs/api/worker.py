"""JobWorkerService, mirroring worker_service.proto: the workers' reports; translation only.

Only workers reach these methods (api.caller refuses anyone else), except GetFileForWorker,
which a worker calls on a user's behalf with the user's credential.
"""

from __future__ import annotations

from bytereview.core.errors import InvalidArgument
from bytereview.core.rpc import Context
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.jobs.api import convert
from services.jobs.domain import (
    FailureReport,
    IngestReports,
    ResultReport,
    TaskReports,
    caller_id_or_none,
    check_batch,
    names,
    superseded,
)

_Class = worker_pb.ReportTaskFailureRequest.FailureClass
_CLASSES = {_Class.Value(name): name for name in ("RETRYABLE", "PERMANENT", "EXHAUSTED")}


class JobWorkerServicer(worker_grpc.JobWorkerServiceServicer):
    def __init__(self, files: IngestReports, tasks: TaskReports) -> None:
        self._files = files
        self._tasks = tasks

    async def ReportFileAnalysis(
        self, request: worker_pb.ReportFileAnalysisRequest, context: Context
    ) -> worker_pb.ReportFileAnalysisResponse:
        ids = names.parse("file", request.file, field="file")
        row, applied = await self._files.file_analysis(
            ids["job"], ids["file"], convert.analysis(request)
        )
        return worker_pb.ReportFileAnalysisResponse(file=convert.source_file(row), applied=applied)

    async def ReportArchiveEntries(
        self, request: worker_pb.ReportArchiveEntriesRequest, context: Context
    ) -> worker_pb.ReportArchiveEntriesResponse:
        ids = names.parse("file", request.archive, field="archive")
        got = await self._files.archive_entries(
            ids["job"], ids["file"], convert.archive_entries(request.entries)
        )
        return worker_pb.ReportArchiveEntriesResponse(
            created=got.created, queued=got.queued, files=got.files, refused=got.refused
        )

    async def BeginTask(
        self, request: worker_pb.BeginTaskRequest, context: Context
    ) -> worker_pb.BeginTaskResponse:
        ids = names.parse("task", request.task, field="task")
        return convert.task_input(await self._tasks.begin_task(ids["job"], ids["task"]))

    async def ReportTaskResult(
        self, request: worker_pb.ReportTaskResultRequest, context: Context
    ) -> worker_pb.ReportTaskResultResponse:
        ids = names.parse("task", request.task, field="task")
        applied, refused, stale = await self._tasks.task_result(
            ids["job"],
            ids["task"],
            values=convert.values(request.values),
            value_sources=dict(request.value_sources),
            input_tokens=request.input_tokens,
            output_tokens=request.output_tokens,
            extractor=request.extractor,
            assessments=convert.assessments_in(request.assessments),
            skipped_files=convert.skipped_files_in(request.skipped_files),
            attempt=request.attempt,
        )
        return worker_pb.ReportTaskResultResponse(
            applied=applied, refused=refused, superseded=stale
        )

    async def ReportTaskFailure(
        self, request: worker_pb.ReportTaskFailureRequest, context: Context
    ) -> worker_pb.ReportTaskFailureResponse:
        ids = names.parse("task", request.task, field="task")
        applied, status = await self._tasks.task_failure(
            ids["job"],
            ids["task"],
            # An unknown number as "" (the domain refuses it); Name() raised ValueError.
            failure_class=_CLASSES.get(request.failure_class, ""),
            error=request.error,
            attempt=request.attempt,
        )
        return worker_pb.ReportTaskFailureResponse(
            applied=applied,
            status=pb.Task.Status.Value(status),
            superseded=superseded(applied, status),
        )

    async def BeginTasks(
        self, request: worker_pb.BeginTasksRequest, context: Context
    ) -> worker_pb.BeginTasksResponse:
        check_batch(len(request.tasks))
        answers: list[worker_pb.BeginTaskResponse | None] = [None] * len(request.tasks)
        ids: list[tuple[str, str]] = []
        positions: list[int] = []
        for i, item in enumerate(request.tasks):
            try:
                parsed = names.parse("task", item.task, field="task")
            except InvalidArgument as exc:
                # One malformed name must not fail (and so redeliver) the whole batch.
                answers[i] = worker_pb.BeginTaskResponse(proceed=False, reason=str(exc))
                continue
            ids.append((parsed["job"], parsed["task"]))
            positions.append(i)
        for i, got in zip(positions, await self._tasks.begin_tasks(ids), strict=True):
            answers[i] = convert.task_input(got)
        return worker_pb.BeginTasksResponse(tasks=[a for a in answers if a is not None])

    async def ReportTaskResults(
        self, request: worker_pb.ReportTaskResultsRequest, context: Context
    ) -> worker_pb.ReportTaskResultsResponse:
        check_batch(len(request.results))
        reports: list[ResultReport] = []
        positions: list[int] = []
        for i, item in enumerate(request.results):
            try:
                parsed = names.parse("task", item.task, field="task")
            except InvalidArgument:
                continue  # nothing to apply: `applied=false`
            reports.append(
                ResultReport(
                    parsed["job"],
                    parsed["task"],
                    values=convert.values(item.values),
                    value_sources=dict(item.value_sources),
                    input_tokens=item.input_tokens,
                    output_tokens=item.output_tokens,
                    extractor=item.extractor,
                    assessments=convert.assessments_in(item.assessments),
                    skipped_files=tuple(convert.skipped_files_in(item.skipped_files)),
                    attempt=item.attempt,
                )
            )
            positions.append(i)
        answers = [worker_pb.ReportTaskResultResponse() for _ in request.results]
        got = await self._tasks.task_results(reports)
        for i, (applied, refused, stale) in zip(positions, got, strict=True):
            answers[i] = worker_pb.ReportTaskResultResponse(
                applied=applied, refused=refused, superseded=stale
            )
        return worker_pb.ReportTaskResultsResponse(results=answers)

    async def ReportTaskFailures(
        self, request: worker_pb.ReportTaskFailuresRequest, context: Context
    ) -> worker_pb.ReportTaskFailuresResponse:
        check_batch(len(request.failures))
        reports: list[FailureReport] = []
        positions: list[int] = []
        for i, item in enumerate(request.failures):
            try:
                parsed = names.parse("task", item.task, field="task")
            except InvalidArgument:
                continue  # nothing to apply: `applied=false`
            failure_class = _CLASSES.get(item.failure_class)
            if failure_class is None:
                continue  # unspecified or unknown: one unreadable report must not fail the batch
            reports.append(
                FailureReport(
                    parsed["job"], parsed["task"], failure_class, item.error, item.attempt
                )
            )
            positions.append(i)
        answers = [worker_pb.ReportTaskFailureResponse() for _ in request.failures]
        got = await self._tasks.task_failures(reports)
        for i, (applied, status) in zip(positions, got, strict=True):
            known = pb.Task.Status.Value(status) if status else pb.Task.STATUS_UNSPECIFIED
            answers[i] = worker_pb.ReportTaskFailureResponse(
                applied=applied, status=known, superseded=superseded(applied, status)
            )
        return worker_pb.ReportTaskFailuresResponse(failures=answers)

    async def GetFileForWorker(
        self, request: worker_pb.GetFileForWorkerRequest, context: Context
    ) -> worker_pb.GetFileForWorkerResponse:
        ids = names.parse("file", request.file, field="file")
        # Workers see every file (no caller id); a user only their own.
        user_id = caller_id_or_none()
        row = await self._files.file_for(ids["job"], ids["file"], user_id)
        return worker_pb.GetFileForWorkerResponse(
            file=convert.task_file(row), caller=names.user_name(user_id) if user_id else ""
        )
