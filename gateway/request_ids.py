"""Request ids: taken from `X-Request-Id` when safe, made up otherwise; echoed and logged.

A plain ASGI middleware rather than `@app.middleware("http")`: Starlette's
BaseHTTPMiddleware runs every request through a task group and memory streams,
which cost more CPU than the rest of a transcoded call.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bytereview.core import request_id

# Forwarded as gRPC metadata and logged: only a safe, short id is kept.
_SAFE = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
HEADER = b"x-request-id"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == HEADER), b"")
        rid = given.decode() if _SAFE.fullmatch(given) else uuid.uuid4().hex
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
