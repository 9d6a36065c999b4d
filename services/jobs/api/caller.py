"""The jobs service's per-call rules, run by the server interceptor after authentication.

- JobWorkerService is for workers: any other caller is PERMISSION_DENIED, except on
  GetFileForWorker, which a worker calls with the user's forwarded credential (preview,
  inspect) and which then shows only that user's files.
- A user caller is resolved to a user id once (created on first sight) and set for the
  call (`domain.set_caller`); servicers read it with `domain.caller_id()`.
- The public services need a user: a worker credential there is PERMISSION_DENIED.
- AdminService needs the admin role (domain.AdminRole): anyone else is PERMISSION_DENIED.
"""

from __future__ import annotations

from bytereview.core.auth import Principal, PrincipalKind
from bytereview.core.errors import PermissionDenied
from bytereview.core.rpc import Authorize
from bytereview.jobs.v1 import admin_service_pb2, worker_service_pb2
from services.jobs.domain import AdminRole, Users, set_caller

WORKER_SERVICE = worker_service_pb2.DESCRIPTOR.services_by_name["JobWorkerService"].full_name
# Worker methods a user's forwarded credential may call.
USER_FORWARDED = frozenset({f"/{WORKER_SERVICE}/GetFileForWorker"})
ADMIN_SERVICE = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name


def caller_hook(users: Users, admins: AdminRole) -> Authorize:
    async def authorize(method: str, principal: Principal) -> None:
        set_caller(None)  # nothing carries over from another call in this context
        is_worker = principal.kind is PrincipalKind.WORKER
        # By service prefix, not by method list: a method added later is guarded too.
        if method.startswith(f"/{ADMIN_SERVICE}/") and not admins.grants(principal):
            raise PermissionDenied("this call needs the admin role")
        if method.startswith(f"/{WORKER_SERVICE}/"):
            if is_worker:
                return
            if method not in USER_FORWARDED:
                raise PermissionDenied("only ByteReview workers may call JobWorkerService")
        elif is_worker:
            raise PermissionDenied("this call needs a user credential")
        set_caller(await users.user_id(principal))

    return authorize
