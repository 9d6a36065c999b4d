"""gRPC servicers of the jobs service: proto <-> domain translation only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from google.api import httpbody_pb2
from google.protobuf import empty_pb2, json_format
from sqlalchemy import select

from bytereview.core.auth import Principal, PrincipalKind
from bytereview.core.errors import InvalidArgument, PermissionDenied
from bytereview.core.rpc import Context, current_principal
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.jobs import convert, models, names
from services.jobs.context import JobsContext
from services.jobs.export import Exporter
from services.jobs.fields import FieldSpec
from services.jobs.jobs import DeclaredFile, Jobs
from services.jobs.reports import ArchiveEntry, FileAnalysis, Reports
from services.jobs.statemachine import JOB_FINAL
from services.jobs.templates import Templates
from services.jobs.users import Users

WATCH_POLL_SECONDS = 2.0


def _specs(fields: object) -> list[FieldSpec]:
    return [FieldSpec(f.name.strip(), f.data_type.strip(), f.instruction) for f in fields]  # type: ignore[attr-defined]


def _actor(user_id: str) -> str:
    return names.user_name(user_id)


class _Caller:
    """Resolves the calling principal to a user id (creating the user on first sight)."""

    def __init__(self, users: Users) -> None:
        self._users = users

    async def user_id(self) -> str:
        return await self._users.user_id(current_principal())


class JobServicer(jobs_grpc.JobServiceServicer):
    def __init__(self, ctx: JobsContext, users: Users) -> None:
        self._ctx = ctx
        self._jobs = Jobs(ctx)
        self._exporter = Exporter(ctx)
        self._caller = _Caller(users)

    async def _job_pb(self, row: models.Job) -> pb.Job:
        return convert.job(row, await self._jobs.fields(row))

    async def CreateJob(
        self, request: jobs_pb.CreateJobRequest, context: Context
    ) -> jobs_pb.CreateJobResponse:
        user_id = await self._caller.user_id()
        job, targets = await self._jobs.create(
            user_id=user_id,
            actor=_actor(user_id),
            display_name=request.display_name,
            files=[DeclaredFile(f.path, f.size_bytes, f.content_type) for f in request.files],
            persist_data=request.persist_data if request.HasField("persist_data") else True,
            request_id=request.request_id,
        )
        return jobs_pb.CreateJobResponse(
            job=await self._job_pb(job),
            upload_targets=[convert.upload_target(job.id, t) for t in targets],
        )

    async def GetJob(self, request: jobs_pb.GetJobRequest, context: Context) -> pb.Job:
        job_id = names.parse("job", request.name)["job"]
        job, fields = await self._jobs.get_with_fields(await self._caller.user_id(), job_id)
        return convert.job(job, fields)

    async def ListJobs(
        self, request: jobs_pb.ListJobsRequest, context: Context
    ) -> jobs_pb.ListJobsResponse:
        status = pb.Job.Status.Name(request.status) if request.status else ""
        page, token, total = await self._jobs.list_jobs(
            await self._caller.user_id(),
            status=status,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return jobs_pb.ListJobsResponse(
            jobs=[convert.job(job, fields) for job, fields in page],
            next_page_token=token,
            total_size=total,
        )

    async def DeleteJob(
        self, request: jobs_pb.DeleteJobRequest, context: Context
    ) -> empty_pb2.Empty:
        job_id = names.parse("job", request.name)["job"]
        await self._jobs.delete(user_id=await self._caller.user_id(), job_id=job_id)
        return empty_pb2.Empty()

    async def FinalizeUploads(
        self, request: jobs_pb.FinalizeUploadsRequest, context: Context
    ) -> pb.Job:
        job_id = names.parse("job", request.name)["job"]
        user_id = await self._caller.user_id()
        job = await self._jobs.finalize_uploads(
            user_id=user_id, actor=_actor(user_id), job_id=job_id
        )
        return await self._job_pb(job)

    async def GetJobProgress(
        self, request: jobs_pb.GetJobProgressRequest, context: Context
    ) -> jobs_pb.JobProgress:
        job_id = names.parse("job", request.name)["job"]
        job, files, tasks = await self._jobs.progress(await self._caller.user_id(), job_id)
        waiting = sum(files.get(s, 0) for s in ("PENDING_UPLOAD", "UPLOADED", "ANALYZING"))
        return jobs_pb.JobProgress(
            job=request.name,
            status=pb.Job.Status.Value(job.status),
            files_by_status=files,
            tasks_by_status=tasks,
            counters=convert.counters(job),
            analysis_done=job.status not in ("PENDING_UPLOAD", "ANALYZING") or waiting == 0,
        )

    async def ListFiles(
        self, request: jobs_pb.ListFilesRequest, context: Context
    ) -> jobs_pb.ListFilesResponse:
        job_id = names.parse("job", request.parent, field="parent")["job"]
        rows, token = await self._jobs.list_files(
            await self._caller.user_id(), job_id, request.page_size, request.page_token
        )
        return jobs_pb.ListFilesResponse(
            files=[convert.source_file(r) for r in rows], next_page_token=token
        )

    async def ConfigureJob(self, request: jobs_pb.ConfigureJobRequest, context: Context) -> pb.Job:
        job_id = names.parse("job", request.name)["job"]
        template_id = (
            names.parse("template", request.template, field="template")["template"]
            if request.template
            else ""
        )
        user_id = await self._caller.user_id()
        job = await self._jobs.configure(
            user_id=user_id,
            actor=_actor(user_id),
            job_id=job_id,
            template_id=template_id,
            fields=_specs(request.fields),
            task_mode=pb.TaskMode.Name(request.task_mode),
            display_name=request.display_name,
        )
        return await self._job_pb(job)

    async def StartJob(self, request: jobs_pb.StartJobRequest, context: Context) -> pb.Job:
        job_id = names.parse("job", request.name)["job"]
        if len(request.request_id) > 100:
            raise InvalidArgument("request_id must be at most 100 characters")
        user_id = await self._caller.user_id()
        job = await self._jobs.start(
            user_id=user_id, actor=_actor(user_id), job_id=job_id, request_id=request.request_id
        )
        return await self._job_pb(job)

    async def PauseJob(self, request: jobs_pb.PauseJobRequest, context: Context) -> pb.Job:
        user_id = await self._caller.user_id()
        job_id = names.parse("job", request.name)["job"]
        return await self._job_pb(
            await self._jobs.pause(user_id=user_id, actor=_actor(user_id), job_id=job_id)
        )

    async def ResumeJob(self, request: jobs_pb.ResumeJobRequest, context: Context) -> pb.Job:
        user_id = await self._caller.user_id()
        job_id = names.parse("job", request.name)["job"]
        return await self._job_pb(
            await self._jobs.resume(user_id=user_id, actor=_actor(user_id), job_id=job_id)
        )

    async def CancelJob(self, request: jobs_pb.CancelJobRequest, context: Context) -> pb.Job:
        user_id = await self._caller.user_id()
        job_id = names.parse("job", request.name)["job"]
        return await self._job_pb(
            await self._jobs.cancel(user_id=user_id, actor=_actor(user_id), job_id=job_id)
        )

    async def RetryFailedTasks(
        self, request: jobs_pb.RetryFailedTasksRequest, context: Context
    ) -> pb.Job:
        user_id = await self._caller.user_id()
        job_id = names.parse("job", request.name)["job"]
        return await self._job_pb(
            await self._jobs.retry_failed(user_id=user_id, actor=_actor(user_id), job_id=job_id)
        )

    async def ListTasks(
        self, request: jobs_pb.ListTasksRequest, context: Context
    ) -> jobs_pb.ListTasksResponse:
        job_id = names.parse("job", request.parent, field="parent")["job"]
        rows, token = await self._jobs.list_tasks(
            await self._caller.user_id(), job_id, request.page_size, request.page_token
        )
        files = await self._jobs.task_files([r.id for r in rows])
        return jobs_pb.ListTasksResponse(
            tasks=[convert.task(r, files.get(r.id, [])) for r in rows], next_page_token=token
        )

    async def ListResults(
        self, request: jobs_pb.ListResultsRequest, context: Context
    ) -> jobs_pb.ListResultsResponse:
        job_id = names.parse("job", request.parent, field="parent")["job"]
        rows, token = await self._jobs.list_results(
            await self._caller.user_id(), job_id, request.page_size, request.page_token
        )
        files = await self._jobs.files_of_results(rows)
        return jobs_pb.ListResultsResponse(
            results=[convert.result(r, files.get(r.task_id, [])) for r in rows],
            next_page_token=token,
        )

    async def UpdateResult(
        self, request: jobs_pb.UpdateResultRequest, context: Context
    ) -> pb.Result:
        ids = names.parse("result", request.result.name, field="result.name")
        user_id = await self._caller.user_id()
        row = await self._jobs.update_result(
            user_id=user_id,
            actor=_actor(user_id),
            job_id=ids["job"],
            result_id=ids["result"],
            values=json_format.MessageToDict(request.result.values),
            paths=list(request.update_mask.paths),
        )
        files = await self._jobs.files_of_results([row])
        return convert.result(row, files.get(row.task_id, []))

    async def ExportResults(
        self, request: jobs_pb.ExportResultsRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        job_id = names.parse("job", request.name)["job"]
        content_type, filename, chunks = await self._exporter.export(
            await self._caller.user_id(), job_id, request.format
        )
        # The gateway turns x-http-* initial metadata into response headers.
        await context.send_initial_metadata(
            [("x-http-content-disposition", f'attachment; filename="{filename}"')]
        )
        async for chunk in chunks:
            yield httpbody_pb2.HttpBody(content_type=content_type, data=chunk)

    async def ListJobEvents(
        self, request: jobs_pb.ListJobEventsRequest, context: Context
    ) -> jobs_pb.ListJobEventsResponse:
        job_id = names.parse("job", request.parent, field="parent")["job"]
        rows, token = await self._jobs.list_events(
            await self._caller.user_id(), job_id, request.page_size, request.page_token
        )
        return jobs_pb.ListJobEventsResponse(
            events=[convert.event(r) for r in rows], next_page_token=token
        )

    async def WatchJob(
        self, request: jobs_pb.WatchJobRequest, context: Context
    ) -> AsyncIterator[pb.JobEvent]:
        """Replay events after `after_sequence`, then stream new ones until the job is final."""
        job_id = names.parse("job", request.name)["job"]
        if request.after_sequence < 0:
            raise InvalidArgument("after_sequence must not be negative")
        user_id = await self._caller.user_id()
        job = await self._jobs.get(user_id, job_id)
        last = request.after_sequence or job.event_sequence
        wake = self._ctx.hub.subscribe(job_id)
        try:
            while True:
                wake.clear()
                job = await self._jobs.get(user_id, job_id)
                if job.event_sequence > last:
                    async with self._ctx.reading() as session:
                        rows = (
                            await session.scalars(
                                select(models.JobEvent)
                                .where(
                                    models.JobEvent.job_id == job_id,
                                    models.JobEvent.sequence > last,
                                )
                                .order_by(models.JobEvent.sequence)
                                .limit(500)
                            )
                        ).all()
                    for row in rows:
                        yield convert.event(row, job)
                        last = row.sequence
                    continue
                if job.status in JOB_FINAL:
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(WATCH_POLL_SECONDS):
                        await wake.wait()
        finally:
            self._ctx.hub.unsubscribe(job_id, wake)


class TemplateServicer(jobs_grpc.TemplateServiceServicer):
    def __init__(self, ctx: JobsContext, users: Users) -> None:
        self._templates = Templates(ctx)
        self._caller = _Caller(users)

    async def CreateTemplate(
        self, request: jobs_pb.CreateTemplateRequest, context: Context
    ) -> pb.Template:
        t = request.template
        row = await self._templates.create(
            await self._caller.user_id(), t.display_name, t.description, _specs(t.fields)
        )
        return convert.template(row)

    async def GetTemplate(
        self, request: jobs_pb.GetTemplateRequest, context: Context
    ) -> pb.Template:
        template_id = names.parse("template", request.name)["template"]
        return convert.template(
            await self._templates.get(await self._caller.user_id(), template_id)
        )

    async def ListTemplates(
        self, request: jobs_pb.ListTemplatesRequest, context: Context
    ) -> jobs_pb.ListTemplatesResponse:
        rows, token = await self._templates.list_templates(
            await self._caller.user_id(), request.page_size, request.page_token
        )
        return jobs_pb.ListTemplatesResponse(
            templates=[convert.template(r) for r in rows], next_page_token=token
        )

    async def UpdateTemplate(
        self, request: jobs_pb.UpdateTemplateRequest, context: Context
    ) -> pb.Template:
        t = request.template
        template_id = names.parse("template", t.name, field="template.name")["template"]
        row = await self._templates.update(
            await self._caller.user_id(),
            template_id,
            list(request.update_mask.paths),
            t.display_name,
            t.description,
            _specs(t.fields),
        )
        return convert.template(row)

    async def DeleteTemplate(
        self, request: jobs_pb.DeleteTemplateRequest, context: Context
    ) -> empty_pb2.Empty:
        template_id = names.parse("template", request.name)["template"]
        await self._templates.delete(await self._caller.user_id(), template_id)
        return empty_pb2.Empty()

    async def ListDataTypes(
        self, request: jobs_pb.ListDataTypesRequest, context: Context
    ) -> jobs_pb.ListDataTypesResponse:
        await self._caller.user_id()
        rows = await self._templates.data_types()
        return jobs_pb.ListDataTypesResponse(data_types=[convert.data_type(r) for r in rows])

    async def ListSystemPrompts(
        self, request: jobs_pb.ListSystemPromptsRequest, context: Context
    ) -> jobs_pb.ListSystemPromptsResponse:
        await self._caller.user_id()
        rows = await self._templates.system_prompts()
        return jobs_pb.ListSystemPromptsResponse(
            system_prompts=[convert.system_prompt(r) for r in rows]
        )


class UserServicer(jobs_grpc.UserServiceServicer):
    def __init__(self, users: Users) -> None:
        self._users = users

    async def SyncCurrentUser(
        self, request: jobs_pb.SyncCurrentUserRequest, context: Context
    ) -> pb.User:
        if len(request.display_name) > 200:
            raise InvalidArgument("display_name must be at most 200 characters")
        row = await self._users.resolve(current_principal(), display_name=request.display_name)
        return convert.user(row)

    async def CreateApiKey(
        self, request: jobs_pb.CreateApiKeyRequest, context: Context
    ) -> pb.ApiKey:
        parent = names.parse("user", request.parent, field="parent")["user"]
        user_id = await self._users.user_id(current_principal())
        row, secret = await self._users.create_api_key(
            user_id, parent, request.api_key.display_name
        )
        return convert.api_key(row, secret)

    async def ListApiKeys(
        self, request: jobs_pb.ListApiKeysRequest, context: Context
    ) -> jobs_pb.ListApiKeysResponse:
        parent = names.parse("user", request.parent, field="parent")["user"]
        user_id = await self._users.user_id(current_principal())
        rows = await self._users.list_api_keys(user_id, parent)
        return jobs_pb.ListApiKeysResponse(api_keys=[convert.api_key(r) for r in rows])

    async def DeleteApiKey(
        self, request: jobs_pb.DeleteApiKeyRequest, context: Context
    ) -> empty_pb2.Empty:
        ids = names.parse("api_key", request.name)
        user_id = await self._users.user_id(current_principal())
        await self._users.delete_api_key(user_id, ids["user"], ids["api_key"])
        return empty_pb2.Empty()


def _require_worker() -> Principal:
    principal = current_principal()
    if principal.kind is not PrincipalKind.WORKER:
        raise PermissionDenied("only ByteReview workers may call JobWorkerService")
    return principal


def _analysis(
    message: worker_pb.ReportFileAnalysisRequest | worker_pb.ArchiveEntry,
) -> FileAnalysis:
    return FileAnalysis(
        status=pb.SourceFile.Status.Name(message.status),
        media_type=message.media_type,
        size_bytes=message.size_bytes,
        sha256=message.sha256,
        page_count=message.page_count,
        width=getattr(message, "width", 0),
        height=getattr(message, "height", 0),
        error=message.error,
    )


class JobWorkerServicer(worker_grpc.JobWorkerServiceServicer):
    def __init__(self, ctx: JobsContext, users: Users) -> None:
        self._reports = Reports(ctx)
        self._users = users

    async def ReportFileAnalysis(
        self, request: worker_pb.ReportFileAnalysisRequest, context: Context
    ) -> worker_pb.ReportFileAnalysisResponse:
        _require_worker()
        ids = names.parse("file", request.file, field="file")
        row, applied = await self._reports.file_analysis(
            ids["job"], ids["file"], _analysis(request)
        )
        return worker_pb.ReportFileAnalysisResponse(file=convert.source_file(row), applied=applied)

    async def ReportArchiveEntries(
        self, request: worker_pb.ReportArchiveEntriesRequest, context: Context
    ) -> worker_pb.ReportArchiveEntriesResponse:
        _require_worker()
        ids = names.parse("file", request.archive, field="archive")
        entries = [
            ArchiveEntry(
                index=e.index,
                path=e.path,
                storage_key=e.storage_key,
                size_bytes=e.size_bytes,
                analysis=_analysis(e) if e.status else None,
            )
            for e in request.entries
        ]
        got = await self._reports.archive_entries(ids["job"], ids["file"], entries)
        return worker_pb.ReportArchiveEntriesResponse(
            created=got.created, queued=got.queued, files=got.files, refused=got.refused
        )

    async def BeginTask(
        self, request: worker_pb.BeginTaskRequest, context: Context
    ) -> worker_pb.BeginTaskResponse:
        _require_worker()
        ids = names.parse("task", request.task, field="task")
        got = await self._reports.begin_task(ids["job"], ids["task"])
        if not got.proceed or got.task is None:
            return worker_pb.BeginTaskResponse(proceed=False, reason=got.reason)
        return worker_pb.BeginTaskResponse(
            proceed=True,
            task=convert.task(got.task, [f.id for f in got.files]),
            fields=[
                pb.JobField(name=f.name, data_type=f.data_type_id, instruction=f.instruction)
                for f in got.fields
            ],
            data_types=[convert.data_type(d) for d in got.data_types],
            files=[_task_file(f) for f in got.files],
            system_prompt=convert.system_prompt(got.system_prompt) if got.system_prompt else None,
        )

    async def ReportTaskResult(
        self, request: worker_pb.ReportTaskResultRequest, context: Context
    ) -> worker_pb.ReportTaskResultResponse:
        _require_worker()
        ids = names.parse("task", request.task, field="task")
        applied = await self._reports.task_result(
            ids["job"],
            ids["task"],
            values=json_format.MessageToDict(request.values),
            value_sources=dict(request.value_sources),
            input_tokens=request.input_tokens,
            output_tokens=request.output_tokens,
            extractor=request.extractor,
        )
        return worker_pb.ReportTaskResultResponse(applied=applied)

    async def ReportTaskFailure(
        self, request: worker_pb.ReportTaskFailureRequest, context: Context
    ) -> worker_pb.ReportTaskFailureResponse:
        _require_worker()
        ids = names.parse("task", request.task, field="task")
        applied, status = await self._reports.task_failure(
            ids["job"],
            ids["task"],
            failure_class=worker_pb.ReportTaskFailureRequest.FailureClass.Name(
                request.failure_class
            ),
            error=request.error,
        )
        return worker_pb.ReportTaskFailureResponse(
            applied=applied, status=pb.Task.Status.Value(status)
        )

    async def GetFileForWorker(
        self, request: worker_pb.GetFileForWorkerRequest, context: Context
    ) -> worker_pb.GetFileForWorkerResponse:
        ids = names.parse("file", request.file, field="file")
        principal = current_principal()
        # Workers see every file; a user (forwarded by a worker's public RPC) only their own.
        user_id = (
            None if principal.kind is PrincipalKind.WORKER else await self._users.user_id(principal)
        )
        row = await self._reports.file_for(ids["job"], ids["file"], user_id)
        return worker_pb.GetFileForWorkerResponse(file=_task_file(row))


def _task_file(row: models.SourceFile) -> worker_pb.TaskFile:
    return worker_pb.TaskFile(
        name=names.file_name(row.job_id, row.id),
        original_path=row.original_path,
        storage_key=row.storage_key,
        media_type=row.media_type,
        page_count=row.page_count,
        status=pb.SourceFile.Status.Value(row.status),
        error=row.error,
    )
