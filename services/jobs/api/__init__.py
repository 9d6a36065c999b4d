"""The jobs service's gRPC API: servicers that translate proto <-> domain, and the per-call
rule that resolves the caller. Imports `domain` (and `store` rows to convert), nothing above.
"""

from collections.abc import Awaitable, Callable

from bytereview.core.auth import Credentials
from bytereview.core.rpc import ServiceBinding, service_name
from bytereview.jobs.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    jobs_service_pb2,
    jobs_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
)
from services.jobs.api.admin import AdminServicer
from services.jobs.api.caller import caller_hook
from services.jobs.api.jobs import JobServicer
from services.jobs.api.templates import TemplateServicer
from services.jobs.api.users import UserServicer
from services.jobs.api.worker import JobWorkerServicer
from services.jobs.domain import Admin, IngestReports, JobsContext, TaskReports, Users


def bindings(
    ctx: JobsContext,
    users: Users,
    admin: Admin,
    extract_waits: Callable[[], list[str]] = lambda: [],
    authenticate: Callable[[Credentials], Awaitable[object]] | None = None,
) -> list[ServiceBinding]:
    """The five services of the jobs service, ready for GrpcServer. `extract_waits`: what
    the extract workers say their waiting tasks wait on (their heartbeats); `authenticate`:
    the server's credential check, run again while a watch is open."""
    return [
        ServiceBinding(
            JobServicer(ctx, extract_waits, authenticate),
            jobs_service_pb2_grpc.add_JobServiceServicer_to_server,
            service_name(jobs_service_pb2, "JobService"),
        ),
        ServiceBinding(
            TemplateServicer(ctx),
            jobs_service_pb2_grpc.add_TemplateServiceServicer_to_server,
            service_name(jobs_service_pb2, "TemplateService"),
        ),
        ServiceBinding(
            UserServicer(users),
            jobs_service_pb2_grpc.add_UserServiceServicer_to_server,
            service_name(jobs_service_pb2, "UserService"),
        ),
        ServiceBinding(
            JobWorkerServicer(IngestReports(ctx), TaskReports(ctx)),
            worker_service_pb2_grpc.add_JobWorkerServiceServicer_to_server,
            service_name(worker_service_pb2, "JobWorkerService"),
            internal=True,
        ),
        ServiceBinding(
            AdminServicer(admin),
            admin_service_pb2_grpc.add_AdminServiceServicer_to_server,
            service_name(admin_service_pb2, "AdminService"),
        ),
    ]


__all__ = [
    "AdminServicer",
    "JobServicer",
    "JobWorkerServicer",
    "TemplateServicer",
    "UserServicer",
    "bindings",
    "caller_hook",
]
