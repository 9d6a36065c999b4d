"""UserService: the calling user and their API keys; translation only."""

from __future__ import annotations

from google.protobuf import empty_pb2

from bytereview.core.errors import PermissionDenied
from bytereview.core.rpc import Context, current_principal
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs.api import convert
from services.jobs.domain import Users, caller_id, names


class UserServicer(jobs_grpc.UserServiceServicer):
    def __init__(self, users: Users) -> None:
        self._users = users

    async def SyncCurrentUser(
        self, request: jobs_pb.SyncCurrentUserRequest, context: Context
    ) -> pb.User:
        # The one method that needs the principal itself: it records its email and name.
        row = await self._users.resolve(current_principal(), display_name=request.display_name)
        return convert.user(row)

    async def CreateApiKey(
        self, request: jobs_pb.CreateApiKeyRequest, context: Context
    ) -> pb.ApiKey:
        if current_principal().user_id:
            # Signed in with an API key: a leaked key could otherwise mint keys that outlive
            # its own revocation. Keys are made by a signed-in person (the web app, a token).
            raise PermissionDenied("an API key cannot create API keys; sign in to create one")
        parent = names.parse("user", request.parent, field="parent")["user"]
        row, secret = await self._users.create_api_key(
            caller_id(), parent, request.api_key.display_name
        )
        return convert.api_key(row, secret)

    async def ListApiKeys(
        self, request: jobs_pb.ListApiKeysRequest, context: Context
    ) -> jobs_pb.ListApiKeysResponse:
        parent = names.parse("user", request.parent, field="parent")["user"]
        rows = await self._users.list_api_keys(caller_id(), parent)
        return jobs_pb.ListApiKeysResponse(api_keys=[convert.api_key(r) for r in rows])

    async def DeleteApiKey(
        self, request: jobs_pb.DeleteApiKeyRequest, context: Context
    ) -> empty_pb2.Empty:
        ids = names.parse("api_key", request.name)
        await self._users.delete_api_key(caller_id(), ids["user"], ids["api_key"])
        return empty_pb2.Empty()
