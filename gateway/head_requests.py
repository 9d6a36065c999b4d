"""HEAD answered as GET without the body, on every route that serves GET.

RFC 9110 (9.1) requires a general-purpose server to support GET and HEAD. Uptime monitors,
link checkers and proxies ask HEAD to learn whether a URL answers and what it would send
(status, type, length); the gateway's own routes (FastAPI's) and the transcoded API served
GET only and answered HEAD 405. The request goes on as a GET, so it is authenticated,
checked and routed exactly as one; only the body is dropped. The server keeps its own
scope, which still says HEAD: uvicorn then leaves the body out too and keeps the length.

A streamed body (an export, a download) is not produced at all past its first chunk: the
answer is ended there and the app stopped, so a stream that never ends (an event stream)
does not hold the HEAD open for ever. The scope marks the GET as standing for a HEAD
(`asked_head`): the proxy tells a streaming backend so (core.head_only), and one that reads
ahead of what is sent (an export) answers its head without reading its body at all.
"""

from __future__ import annotations

import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            if message.get("more_body", False):
                raise _Answered  # a stream: the rest is not wanted

        with contextlib.suppress(_Answered):
            await self.app({**scope, "method": "GET", _HEAD: True}, receive, without_body)


# The scope's mark of a GET that stands for a HEAD (ASGI lets a server or middleware add keys).
_HEAD = "bytereview.head"


def asked_head(scope: Scope) -> bool:
    """Whether this GET is a HEAD's (HeadAsGet): only the answer's head will be sent."""
    return bool(scope.get(_HEAD, False))


class _Answered(Exception):
    """Stops the app once a HEAD's answer is complete (its head sent, its body ended)."""


def with_head(allowed: str) -> str:
    """An `Allow` value naming HEAD wherever it names GET (HeadAsGet serves both)."""
    methods = [m.strip() for m in allowed.split(",") if m.strip()]
    if "GET" in methods and "HEAD" not in methods:
        methods.insert(methods.index("GET") + 1, "HEAD")
    return ", ".join(methods)
