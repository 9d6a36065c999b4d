"""JobService: proto <-> domain translation only. The caller is resolved before any method
runs (api.caller); every rule lives in the domain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from google.api import httpbody_pb2
from google.protobuf import empty_pb2

from bytereview.core import disposition
from bytereview.core.auth import Credentials
from bytereview.core.errors import NotFound
from bytereview.core.head_only import head_only
from bytereview.core.rpc import Context
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs.api import convert
from services.jobs.domain import (
    Exporter,
    JobQueries,
    Jobs,
    JobsContext,
    JobStatus,
    RerunChoice,
    Reruns,
    Results,
    ResultVersions,
    Reviews,
    caller_actor,
    caller_id,
    names,
    told_to_users,
    watch_job,
)
from services.jobs.store import models


def _job_id(name: str) -> str:
    return names.parse("job", name)["job"]


def _parent_id(parent: str) -> str:
    return names.parse("job", parent, field="parent")["job"]


def _template_version(name: str, template_id: str) -> int:
    """The version number in `name` (0 when empty); it must be a version of `template_id`."""
    if not name:
        return 0
    ids = names.parse("template_version", name, field="template_version")
    if ids["template"] != template_id:
        # Well formed, but no such version of that template: NOT_FOUND, as RevertResult's and
        # CompareTemplateVersions' (and as the job's own NOT_FOUND, which it was checked before).
        raise NotFound(f"{name} is not a version of {names.template_name(template_id)}")
    return int(ids["template_version"])


class JobServicer(jobs_grpc.JobServiceServicer):
    def __init__(
        self,
        ctx: JobsContext,
        extract_waits: Callable[[], list[str]] = lambda: [],
        authenticate: Callable[[Credentials], Awaitable[object]] | None = None,
    ) -> None:
        """`extract_waits`: what the extract workers say their waiting tasks wait on.
        `authenticate`: the server's check of a credential, run again while a watch is open
        (a revoked API key or an expired token ends it)."""
        self._ctx = ctx
        self._extract_waits = extract_waits
        self._authenticate = authenticate
        self._jobs = Jobs(ctx)
        self._queries = JobQueries(ctx)
        self._results = Results(ctx)
        self._reviews = Reviews(ctx)
        self._exporter = Exporter(ctx)
        self._versions = ResultVersions(ctx)
        self._reruns = Reruns(ctx)

    async def _job_pb(self, row: models.Job) -> pb.Job:
        return convert.job(row, await self._queries.fields(row))

    async def CreateJob(
        self, request: jobs_pb.CreateJobRequest, context: Context
    ) -> jobs_pb.CreateJobResponse:
        job, targets = await self._jobs.create(
            user_id=caller_id(),
            actor=caller_actor(),
            display_name=request.display_name,
            files=convert.declared_files(request.files),
            persist_data=request.persist_data if request.HasField("persist_data") else True,
            request_id=request.request_id,
        )
        return jobs_pb.CreateJobResponse(
            job=await self._job_pb(job),
            upload_targets=[convert.upload_target(job.id, t) for t in targets],
        )

    async def GetJob(self, request: jobs_pb.GetJobRequest, context: Context) -> pb.Job:
        job, fields = await self._queries.get_with_fields(caller_id(), _job_id(request.name))
        return convert.job(job, fields)

    async def ListJobs(
        self, request: jobs_pb.ListJobsRequest, context: Context
    ) -> jobs_pb.ListJobsResponse:
        page, token, total = await self._queries.list_jobs(
            caller_id(),
            status=pb.Job.Status.Name(request.status) if request.status else "",
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
        await self._jobs.delete(user_id=caller_id(), job_id=_job_id(request.name))
        return empty_pb2.Empty()

    async def FinalizeUploads(
        self, request: jobs_pb.FinalizeUploadsRequest, context: Context
    ) -> pb.Job:
        job = await self._jobs.finalize_uploads(
            user_id=caller_id(), actor=caller_actor(), job_id=_job_id(request.name)
        )
        return await self._job_pb(job)

    async def GetJobProgress(
        self, request: jobs_pb.GetJobProgressRequest, context: Context
    ) -> jobs_pb.JobProgress:
        found = await self._queries.progress(caller_id(), _job_id(request.name))
        progress = convert.progress(request.name, found)
        if found.job.status == JobStatus.RUNNING:
            # Pool-wide, not this job's own: a worker waiting on the model holds whichever
            # tasks it has, and this job's wait for the same model (as WatchJob's job.held).
            progress.waiting_on.extend(told_to_users(self._extract_waits()))
        return progress

    async def ListFiles(
        self, request: jobs_pb.ListFilesRequest, context: Context
    ) -> jobs_pb.ListFilesResponse:
        rows, token = await self._queries.list_files(
            caller_id(), _parent_id(request.parent), request.page_size, request.page_token
        )
        return jobs_pb.ListFilesResponse(
            files=[convert.source_file(r) for r in rows], next_page_token=token
        )

    async def ConfigureJob(self, request: jobs_pb.ConfigureJobRequest, context: Context) -> pb.Job:
        job_id = _job_id(request.name)
        template_id = (
            names.parse("template", request.template, field="template")["template"]
            if request.template
            else ""
        )
        job = await self._jobs.configure(
            user_id=caller_id(),
            actor=caller_actor(),
            job_id=job_id,
            template_id=template_id,
            fields=convert.field_specs(request.fields),
            task_mode=pb.TaskMode.Name(request.task_mode),
            display_name=request.display_name,
            folder_rules=convert.folder_rules(request.folder_rules),
            system_prompt_id=(
                names.parse("system_prompt", request.system_prompt, field="system_prompt")[
                    "system_prompt"
                ]
                if request.system_prompt
                else ""
            ),
            template_version=_template_version(request.template_version, template_id),
        )
        return await self._job_pb(job)

    async def PlanTasks(
        self, request: jobs_pb.PlanTasksRequest, context: Context
    ) -> jobs_pb.TaskPlan:
        file_count, folders = await self._jobs.plan(
            user_id=caller_id(),
            job_id=_job_id(request.name),
            task_mode=convert.task_mode_name(request.task_mode),
            folder_rules=convert.folder_rules(request.folder_rules),
        )
        return convert.task_plan(file_count, folders)

    async def StartJob(self, request: jobs_pb.StartJobRequest, context: Context) -> pb.Job:
        job = await self._jobs.start(
            user_id=caller_id(),
            actor=caller_actor(),
            job_id=_job_id(request.name),
            request_id=request.request_id,
        )
        return await self._job_pb(job)

    async def PauseJob(self, request: jobs_pb.PauseJobRequest, context: Context) -> pb.Job:
        job_id = _job_id(request.name)
        return await self._job_pb(
            await self._jobs.pause(user_id=caller_id(), actor=caller_actor(), job_id=job_id)
        )

    async def ResumeJob(self, request: jobs_pb.ResumeJobRequest, context: Context) -> pb.Job:
        job_id = _job_id(request.name)
        return await self._job_pb(
            await self._jobs.resume(user_id=caller_id(), actor=caller_actor(), job_id=job_id)
        )

    async def CancelJob(self, request: jobs_pb.CancelJobRequest, context: Context) -> pb.Job:
        job_id = _job_id(request.name)
        return await self._job_pb(
            await self._jobs.cancel(user_id=caller_id(), actor=caller_actor(), job_id=job_id)
        )

    async def RetryFailedTasks(
        self, request: jobs_pb.RetryFailedTasksRequest, context: Context
    ) -> pb.Job:
        job_id = _job_id(request.name)
        return await self._job_pb(
            await self._jobs.retry_failed(user_id=caller_id(), actor=caller_actor(), job_id=job_id)
        )

    async def ListTasks(
        self, request: jobs_pb.ListTasksRequest, context: Context
    ) -> jobs_pb.ListTasksResponse:
        rows, token = await self._queries.list_tasks(
            caller_id(), _parent_id(request.parent), request.page_size, request.page_token
        )
        files = await self._queries.task_files([r.id for r in rows])
        return jobs_pb.ListTasksResponse(
            tasks=[convert.task(r, files.get(r.id, [])) for r in rows], next_page_token=token
        )

    async def ListResults(
        self, request: jobs_pb.ListResultsRequest, context: Context
    ) -> jobs_pb.ListResultsResponse:
        rows, token = await self._queries.list_results(
            caller_id(), _parent_id(request.parent), request.page_size, request.page_token
        )
        files = await self._queries.files_of_results(rows)
        return jobs_pb.ListResultsResponse(
            results=[convert.result(r, files.get(r.task_id, [])) for r in rows],
            next_page_token=token,
        )

    async def _one_result(self, row: models.Result) -> pb.Result:
        """One result as the API gives it, with its files' paths."""
        files = await self._queries.files_of_results([row])
        return convert.result(row, files.get(row.task_id, []))

    async def GetResult(self, request: jobs_pb.GetResultRequest, context: Context) -> pb.Result:
        ids = names.parse("result", request.name)
        row = await self._versions.current(caller_id(), ids["job"], ids["result"])
        return await self._one_result(row)

    async def UpdateResult(
        self, request: jobs_pb.UpdateResultRequest, context: Context
    ) -> pb.Result:
        ids = names.parse("result", request.result.name, field="result.name")
        row = await self._results.update(
            user_id=caller_id(),
            actor=caller_actor(),
            job_id=ids["job"],
            result_id=ids["result"],
            values=convert.values(request.result.values),
            paths=list(request.update_mask.paths),
            reason=request.reason,
            etag=request.result.etag,
        )
        return await self._one_result(row)

    async def ExportResults(
        self, request: jobs_pb.ExportResultsRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        user_id, job_id = caller_id(), _job_id(request.name)
        with self._exporter.slot(user_id):
            if head_only(context):
                # A REST HEAD: the export's type and file name, none of its rows read.
                content_type, filename = await self._exporter.head(user_id, job_id, request.format)
                chunks: AsyncIterator[bytes] | None = None
            else:
                content_type, filename, chunks = await self._exporter.export(
                    user_id, job_id, request.format, evidence=request.include_evidence
                )
            # The gateway turns x-http-* initial metadata into response headers.
            await context.send_initial_metadata(
                [
                    (
                        "x-http-content-disposition",
                        disposition.attachment(filename, default="results"),
                    )
                ]
            )
            if chunks is None:
                yield httpbody_pb2.HttpBody(content_type=content_type)
                return
            async for chunk in chunks:
                yield httpbody_pb2.HttpBody(content_type=content_type, data=chunk)

    async def ListJobEvents(
        self, request: jobs_pb.ListJobEventsRequest, context: Context
    ) -> jobs_pb.ListJobEventsResponse:
        rows, token = await self._queries.list_events(
            caller_id(), _parent_id(request.parent), request.page_size, request.page_token
        )
        return jobs_pb.ListJobEventsResponse(
            events=[convert.event(r) for r in rows], next_page_token=token
        )

    async def WatchJob(
        self, request: jobs_pb.WatchJobRequest, context: Context
    ) -> AsyncIterator[pb.JobEvent]:
        """The job's snapshot (domain.jobs.watch), then the events after `after_sequence`,
        then new ones until the job is final."""
        job_id = _job_id(request.name)
        still_allowed = None
        if self._authenticate is not None:
            credentials = Credentials.from_metadata(context.invocation_metadata())
            authenticate = self._authenticate

            async def still_allowed() -> None:
                await authenticate(credentials)

        events = watch_job(
            self._ctx,
            caller_id(),
            job_id,
            after_sequence=request.after_sequence,
            held=lambda: told_to_users(self._extract_waits()),
            still_allowed=still_allowed,
        )
        async for row, job in events:
            yield convert.event(row, job)

    async def ListResultVersions(
        self, request: jobs_pb.ListResultVersionsRequest, context: Context
    ) -> jobs_pb.ListResultVersionsResponse:
        ids = names.parse("result", request.parent, field="parent")
        rows, token = await self._versions.list_versions(
            caller_id(), ids["job"], ids["result"], request.page_size, request.page_token
        )
        return jobs_pb.ListResultVersionsResponse(
            versions=[convert.result_version(ids["job"], r) for r in rows], next_page_token=token
        )

    async def GetResultVersion(
        self, request: jobs_pb.GetResultVersionRequest, context: Context
    ) -> pb.ResultVersion:
        ids = names.parse("result_version", request.name)
        row = await self._versions.get_version(
            caller_id(), ids["job"], ids["result"], int(ids["result_version"])
        )
        return convert.result_version(ids["job"], row)

    async def RevertResult(
        self, request: jobs_pb.RevertResultRequest, context: Context
    ) -> pb.Result:
        ids = names.parse("result", request.name)
        target = names.parse("result_version", request.version, field="version")
        if (target["job"], target["result"]) != (ids["job"], ids["result"]):
            # Well formed, but no such version of this result.
            raise NotFound(f"{request.version} is not a version of {request.name}")
        row = await self._versions.revert(
            user_id=caller_id(),
            actor=caller_actor(),
            job_id=ids["job"],
            result_id=ids["result"],
            version=int(target["result_version"]),
            reason=request.reason,
            etag=request.etag,
        )
        return await self._one_result(row)

    async def RerunJob(
        self, request: jobs_pb.RerunJobRequest, context: Context
    ) -> jobs_pb.RerunJobResponse:
        job_id = _job_id(request.name)
        file_ids, result_ids = [], []
        for name in request.files:
            ids = names.parse("file", name, field="files")
            if ids["job"] != job_id:
                raise NotFound(f"files: {name} is not a file of {request.name}")
            file_ids.append(ids["file"])
        for name in request.results:
            ids = names.parse("result", name, field="results")
            if ids["job"] != job_id:
                raise NotFound(f"results: {name} is not a result of {request.name}")
            result_ids.append(ids["result"])
        version = None
        if request.template_version:
            ids = names.parse(
                "template_version", request.template_version, field="template_version"
            )
            version = (ids["template"], int(ids["template_version"]))
        outcome = await self._reruns.rerun(
            user_id=caller_id(),
            actor=caller_actor(),
            job_id=job_id,
            choice=RerunChoice(
                file_ids=file_ids,
                failed_tasks=request.failed_tasks,
                result_ids=result_ids,
                fields=list(request.fields),
                template_version=version,
                force=request.force,
            ),
        )
        return jobs_pb.RerunJobResponse(
            job=await self._job_pb(outcome.job),
            queued_tasks=[names.task_name(job_id, t.id) for t in outcome.queued],
            skipped_tasks=[names.task_name(job_id, t.id) for t in outcome.skipped],
        )

    async def ListReviewItems(
        self, request: jobs_pb.ListReviewItemsRequest, context: Context
    ) -> jobs_pb.ListReviewItemsResponse:
        # `jobs/-`: every job of the caller (AIP-159).
        parent = "-" if request.parent == "jobs/-" else _parent_id(request.parent)
        items, token, total = await self._reviews.list(
            caller_id(),
            parent,
            confidence_below=request.confidence_below,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        files = await self._queries.task_paths({i.task_id for i in items})
        return jobs_pb.ListReviewItemsResponse(
            review_items=[convert.review_item(i, files.get(i.task_id, [])) for i in items],
            next_page_token=token,
            total_size=total,
        )

    async def AcceptReviewItem(
        self, request: jobs_pb.AcceptReviewItemRequest, context: Context
    ) -> pb.ReviewItem:
        item = await self._reviews.accept(
            user_id=caller_id(), actor=caller_actor(), name=request.name, etag=request.etag
        )
        files = await self._queries.task_paths({item.task_id})
        return convert.review_item(item, files.get(item.task_id, []))
