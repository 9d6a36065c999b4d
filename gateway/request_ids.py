"""Request ids: taken from `X-Request-Id` when safe, made up otherwise; echoed and logged.

A plain ASGI middleware rather than `@app.middleware("http")`: Starlette's
BaseHTTPMiddleware runs every request through a task group and memory streams,
which cost more CPU than the rest of a transcoded call.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bytereview.core import request_id
from bytereview.core.rpc import safe_request_id

# Forwarded as gRPC metadata and logged: only a safe, short id is kept (core.rpc's rule).
HEADER = b"x-request-id"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = safe_request_id(next((v for k, v in scope["headers"] if k == HEADER), b""))
        scope.setdefault("state", {})["request_id"] = rid
        # Handlers run in this task's context, so their log lines carry the id.
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k != HEADER]
                message["headers"] = [*headers, (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
