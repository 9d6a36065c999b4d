"""AdminService, mirroring admin_service.proto: translation only. api.caller lets only
admins in (PERMISSION_DENIED otherwise); the rules live in domain.admin."""

from __future__ import annotations

from google.protobuf import duration_pb2

from bytereview.core.rpc import Context
from bytereview.jobs.v1 import admin_service_pb2 as admin_pb
from bytereview.jobs.v1 import admin_service_pb2_grpc as admin_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs.api import convert
from services.jobs.domain import (
    Admin,
    AdminDeadLetter,
    QueueStat,
    caller_actor,
    caller_id,
    names,
)


def dead_letter(found: AdminDeadLetter) -> admin_pb.DeadLetter:
    return admin_pb.DeadLetter(
        name=found.name,
        job=names.job_name(found.job_id),
        owner=names.user_name(found.owner_id),
        job_status=pb.Job.Status.Value(found.job_status),
        error=found.error,
        attempts=found.attempts,
        path=found.path,
        fail_time=convert.ts(found.failed_at),
    )


def pool_queue(stat: QueueStat) -> admin_pb.PoolQueue:
    out = admin_pb.PoolQueue(
        pool=stat.pool,
        stream=stat.spec.stream,
        consumer=stat.spec.durable,
        pending=stat.pending,
        ack_pending=stat.ack_pending,
        redelivered=stat.redelivered,
        waiting_pulls=stat.waiting_pulls,
        messages=stat.messages,
        consumers=stat.consumers,
        workers=[
            admin_pb.PoolWorker(
                pod=w.pod,
                inflight=w.inflight,
                last_seen_time=convert.ts(w.seen_at),
                waiting=w.waiting,
                waiting_on=w.waiting_on,
            )
            for w in stat.workers
        ],
    )
    if stat.oldest_age is not None:
        out.oldest_age.CopyFrom(duration_pb2.Duration())
        out.oldest_age.FromTimedelta(stat.oldest_age)
    return out


def _dead_letter_ids(name: str) -> tuple[str, str, str]:
    """(kind, job id, task or file id) of a dead letter's name."""
    if "/files/" in name:
        ids = names.parse("file", name)
        return "file", ids["job"], ids["file"]
    ids = names.parse("task", name)
    return "task", ids["job"], ids["task"]


class AdminServicer(admin_grpc.AdminServiceServicer):
    def __init__(self, admin: Admin) -> None:
        self._admin = admin

    async def ListAllJobs(
        self, request: admin_pb.ListAllJobsRequest, context: Context
    ) -> admin_pb.ListAllJobsResponse:
        owner = ""
        if request.owner:
            owner = names.parse("user", request.owner, field="owner")["user"]
            owner = caller_id() if owner == "me" else owner
        page, token, total = await self._admin.list_jobs(
            statuses=[pb.Job.Status.Name(s) for s in request.statuses],
            min_age_seconds=request.min_age_seconds,
            owner_id=owner,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return admin_pb.ListAllJobsResponse(
            jobs=[convert.job(job, fields) for job, fields in page],
            next_page_token=token,
            total_size=total,
        )

    async def ListJobTasks(
        self, request: admin_pb.ListJobTasksRequest, context: Context
    ) -> admin_pb.ListJobTasksResponse:
        job_id = names.parse("job", request.parent, field="parent")["job"]
        tasks, files, token = await self._admin.list_tasks(
            job_id,
            statuses=[pb.Task.Status.Name(s) for s in request.statuses],
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return admin_pb.ListJobTasksResponse(
            tasks=[convert.task(t, files.get(t.id, [])) for t in tasks], next_page_token=token
        )

    async def ListDeadLetters(
        self, request: admin_pb.ListDeadLettersRequest, context: Context
    ) -> admin_pb.ListDeadLettersResponse:
        found, token = await self._admin.dead_letters(
            page_size=request.page_size, page_token=request.page_token
        )
        return admin_pb.ListDeadLettersResponse(
            dead_letters=[dead_letter(d) for d in found], next_page_token=token
        )

    async def RetryDeadLetter(
        self, request: admin_pb.RetryDeadLetterRequest, context: Context
    ) -> admin_pb.DeadLetter:
        ids = names.parse("task", request.name)
        return dead_letter(
            await self._admin.retry_task(
                actor=caller_actor(), job_id=ids["job"], task_id=ids["task"], reason=request.reason
            )
        )

    async def DiscardDeadLetter(
        self, request: admin_pb.DiscardDeadLetterRequest, context: Context
    ) -> admin_pb.DeadLetter:
        kind, job_id, item_id = _dead_letter_ids(request.name)
        return dead_letter(
            await self._admin.discard(
                actor=caller_actor(),
                kind=kind,
                job_id=job_id,
                item_id=item_id,
                reason=request.reason,
            )
        )

    async def GetQueueStats(
        self, request: admin_pb.GetQueueStatsRequest, context: Context
    ) -> admin_pb.QueueStats:
        return admin_pb.QueueStats(pools=[pool_queue(s) for s in await self._admin.queue_stats()])
