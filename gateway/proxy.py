"""The transcoding proxy: a REST call in, the gRPC call it maps to out, the answer back.

Unary and server-streaming RPCs take the same steps: match the route, check the credential is
there, build the request message, call the backend, map a gRPC error to its HTTP status, count
the call. What differs between RPCs is read from their descriptors, never from their names:
- a unary reply is proto3 JSON;
- a stream of `google.api.HttpBody` is the bytes themselves (file downloads);
- any other stream is SSE (`Accept: text/event-stream`) or NDJSON; when its messages carry a
  `sequence` field it numbers the SSE events, and when its request has an `after_sequence`
  field a reconnecting browser's `Last-Event-ID` fills it, so the stream resumes where it broke.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf import descriptor
from google.protobuf.message import Message
from prometheus_client import Counter, Histogram

from bytereview.core import DomainError, InvalidArgument, Unauthenticated
from bytereview.core.auth import CREDENTIAL_HEADERS, Credentials
from bytereview.core.constant_time import same_secret
from bytereview.core.head_only import HEAD_ONLY
from bytereview.extract.v1 import extract_service_pb2
from bytereview.ingest.v1 import ingest_service_pb2
from bytereview.jobs.v1 import admin_service_pb2, jobs_service_pb2
from gateway.errors import error_response, http_error, method_not_allowed
from gateway.head_requests import asked_head
from gateway.preconditions import if_match
from gateway.stream_responses import ClosingStreamingResponse
from gateway.transcoder import Route, RouteTable, build_request, message_class, routes_for, to_json
from gateway.upstreams import Upstreams

log = logging.getLogger(__name__)

MAX_JSON_BODY = 1024 * 1024
# grpc-stubs lacks aio.EOF, the sentinel a stream's read() returns at its end.
EOF: Any = getattr(grpc.aio, "EOF")  # noqa: B009
UNARY_DEADLINE = 30.0
FORWARDED = CREDENTIAL_HEADERS
_PRINTABLE = re.compile(r"[\x20-\x7e]{0,4096}")
_EVENT_ID = re.compile(r"[0-9]{1,19}")
# What RFC 8259 counts as whitespace. `bytes.strip()` also removes \x0b and \x0c: a body of a
# vertical tab read as "no body" and the call succeeded, though it is not JSON at all.
JSON_WHITESPACE = b" \t\n\r"
# Deeper JSON than any request message needs; bounds the parsers' recursion.
MAX_JSON_DEPTH = 32
HTTP_BODY = "google.api.HttpBody"
# The stream-resumption convention (see the module docstring).
EVENT_ID_FIELD = "sequence"
RESUME_FIELD = "after_sequence"
METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]
ANY_METHOD = [*METHODS, "OPTIONS", "TRACE", "CONNECT"]  # HEAD arrives as GET (head_requests)
# An SSE answer starts after this long without a first event (see _stream_response).
SSE_FIRST_WAIT = 1.0
SSE_KEEPALIVE = 15.0

# `status` is the HTTP status answered; for a stream, the one its headers carried.
REQUESTS = Counter("bytereview_gateway_requests_total", "REST calls", ["route", "status"])
# For a stream: the time to its first message, i.e. until the answer starts.
LATENCY = Histogram("bytereview_gateway_request_seconds", "REST call latency", ["route"])


def public_routes() -> RouteTable:
    """Every annotated RPC of the public services, with the backend that serves it."""
    services = [
        (jobs_service_pb2.DESCRIPTOR.services_by_name["JobService"], "jobs"),
        (jobs_service_pb2.DESCRIPTOR.services_by_name["TemplateService"], "jobs"),
        (jobs_service_pb2.DESCRIPTOR.services_by_name["UserService"], "jobs"),
        (admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"], "jobs"),
        (ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"], "ingest"),
        (extract_service_pb2.DESCRIPTOR.services_by_name["ExtractService"], "extract"),
    ]
    return RouteTable([r for service, upstream in services for r in routes_for(service, upstream)])


def _int_field(desc: descriptor.Descriptor, name: str) -> bool:
    field = desc.fields_by_name.get(name)
    return field is not None and field.cpp_type in (
        descriptor.FieldDescriptor.CPPTYPE_INT64,
        descriptor.FieldDescriptor.CPPTYPE_INT32,
    )


@dataclass(frozen=True, slots=True)
class CallShape:
    """How one RPC is called and answered, worked out once from its descriptor."""

    reply: type[Message]
    streaming: bool
    raw_bytes: bool  # a stream of HttpBody: the client gets the bytes, not JSON
    numbered: bool  # stream messages carry `sequence`: it becomes the SSE event id
    resumable: bool  # a stream whose request takes `after_sequence`: Last-Event-ID fills it

    @classmethod
    def of(cls, method: descriptor.MethodDescriptor) -> CallShape:
        output, request = method.output_type, method.input_type
        return cls(
            reply=message_class(output),
            streaming=bool(method.server_streaming),
            raw_bytes=output.full_name == HTTP_BODY,
            numbered=_int_field(output, EVENT_ID_FIELD),
            resumable=bool(method.server_streaming) and _int_field(request, RESUME_FIELD),
        )


class TranscodingProxy:
    """The handler behind `/v1/...`: every transcoded REST call goes through `handle`."""

    def __init__(self, table: RouteTable, upstreams: Upstreams, *, worker_token: str = "") -> None:
        self._table = table
        self._upstreams = upstreams
        # The internal credential of the workers: never accepted from outside (it reads
        # every tenant's files), so a leaked one is useless through the public gateway.
        self._worker_token = worker_token
        self._shapes = {route.grpc_path: CallShape.of(route.method) for route in table.routes}

    def mount(self, app: FastAPI) -> None:
        # A plain Starlette route: the proxy parses and checks everything itself, so FastAPI's
        # per-call dependency solving would be pure overhead on every API call.
        # Every method reaches `handle`, so one no route serves (OPTIONS, TRACE...) gets our
        # 405 with the path's own `Allow`, not Starlette's with the mount's method list.
        app.router.add_route(
            "/v1/{rest:path}", self.handle, methods=ANY_METHOD, include_in_schema=False
        )

    async def handle(self, request: Request) -> Response:
        path = "/v1/" + request.path_params["rest"]
        found = self._table.match(request.method, path)
        if found is None:
            allowed = self._table.allowed(path)
            if allowed:
                return method_not_allowed(request.method, path, ", ".join(allowed))
            return http_error(404, "NOT_FOUND", f"no API route {request.method} {path}")
        route, values = found
        refused = _refuse_credentials(request, self._worker_token)
        if refused is not None:
            return refused
        started = time.perf_counter()
        status = 500  # what an unexpected exception would answer
        try:
            response = await self._forward(route, values, request)
            status = response.status_code
            return response
        finally:
            REQUESTS.labels(route.template, str(status)).inc()
            LATENCY.labels(route.template).observe(time.perf_counter() - started)

    async def _forward(self, route: Route, values: dict[str, str], request: Request) -> Response:
        shape = self._shapes[route.grpc_path]
        try:
            body = await _json_body(request) if route.body else None
            if body is None and route.body and route.body != "*":
                # A body that is one field is the resource itself (a template, a result, an
                # API key): the document requires it. A missing one was read as an empty
                # resource (an API key made from nothing, a masked field cleared).
                raise InvalidArgument(f"the request body is required: the {route.body} as JSON")
            message = build_request(route, values, list(request.query_params.multi_items()), body)
            precondition = if_match(message, route, request.headers.getlist("if-match"))
            if shape.resumable:
                _resume_from_last_event(message, request)
        except DomainError as exc:
            return http_error(400, "INVALID_ARGUMENT", exc.message)
        metadata = _metadata(request)
        ch = self._upstreams.get(route.upstream)
        try:
            if shape.streaming:
                if asked_head(request.scope):
                    metadata.append(HEAD_ONLY)  # the backend may answer its head alone
                call = ch.unary_stream(
                    route.grpc_path,
                    request_serializer=_serialize,
                    response_deserializer=shape.reply.FromString,
                )
                return await _stream_response(
                    route, shape, call(message, metadata=metadata), request
                )
            unary = ch.unary_unary(
                route.grpc_path,
                request_serializer=_serialize,
                response_deserializer=shape.reply.FromString,
            )
            reply = await unary(message, metadata=metadata, timeout=UNARY_DEADLINE)
        except grpc.aio.AioRpcError as exc:
            # The one place a gRPC status becomes an HTTP one (a stream's first message included).
            if precondition and exc.code() == grpc.StatusCode.ABORTED:
                # The etag compared came from If-Match: RFC 9110 (13.1.1) answers 412. Only
                # an etag that no longer matches is ABORTED in this API (etags.check_etag);
                # another cause of ABORTED would need telling apart here.
                return http_error(412, exc.code().name, exc.details() or "")
            return error_response(exc.code(), exc.details() or "")
        return JSONResponse(to_json(reply))


def _serialize(message: Message) -> bytes:
    # Not `Message.SerializeToString`: that is the abstract base's, each class has its own.
    return message.SerializeToString()


def _refuse_credentials(request: Request, worker_token: str) -> Response | None:
    """A 401 when no credential is sent, one cannot travel as gRPC metadata, or it is the
    workers' internal token; else None.

    The backends verify credentials; this spares them calls that cannot succeed and keeps
    the worker credential off the public surface."""
    if not request.headers.get("authorization") and not request.headers.get("x-api-key"):
        return http_error(
            401,
            "UNAUTHENTICATED",
            "missing credential: send 'Authorization: Bearer <token>' or 'X-API-Key: <key>'",
        )
    for name in FORWARDED:
        # gRPC metadata takes printable ASCII only; anything else is not a credential.
        if not _PRINTABLE.fullmatch(request.headers.get(name, "")):
            return http_error(401, "UNAUTHENTICATED", f"malformed {name} header")
    try:
        # The services' rule for an ambiguous credential (a header twice, a bearer beside a
        # key), applied here too: only one value of each header is forwarded.
        Credentials.from_metadata([(k, v) for k, v in request.headers.items() if k in FORWARDED])
    except Unauthenticated as exc:
        return http_error(401, "UNAUTHENTICATED", exc.message)
    if worker_token and _is_worker_token(request, worker_token):
        return http_error(401, "UNAUTHENTICATED", "this credential is not accepted here")
    return None


def _is_worker_token(request: Request, worker_token: str) -> bool:
    auth = request.headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    key = request.headers.get("x-api-key", "").strip()
    return same_secret(bearer, worker_token) or same_secret(key, worker_token)


def _metadata(request: Request) -> list[tuple[str, str]]:
    out = [("x-request-id", request.state.request_id)]
    for name in FORWARDED:
        value = request.headers.get(name)
        if value:
            out.append((name, value))
    return out


def _resume_from_last_event(message: Message, request: Request) -> None:
    """EventSource resends the last id it saw; an explicit `after_sequence` wins over it.

    Raises InvalidArgument for an id that is not a sequence number: ASCII digits only
    (`str.isdigit` also takes `²`) and within the field's int64 range."""
    last_id = request.headers.get("last-event-id", "").strip()
    if not last_id or getattr(message, RESUME_FIELD):
        return
    if not _EVENT_ID.fullmatch(last_id) or int(last_id) >= 2**63:
        raise InvalidArgument("Last-Event-ID must be an event sequence number")
    setattr(message, RESUME_FIELD, int(last_id))


async def _json_body(request: Request) -> object:
    declared = request.headers.get("content-length")
    too_big = f"the request body is larger than {MAX_JSON_BODY} bytes"
    if declared is not None and declared.isdigit() and int(declared) > MAX_JSON_BODY:
        raise InvalidArgument(too_big)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BODY:
            raise InvalidArgument(too_big)
    if not raw.strip(JSON_WHITESPACE):
        return None
    if _nesting(raw) > MAX_JSON_DEPTH:
        raise InvalidArgument(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        parsed = json.loads(raw, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and over-long integers.
        raise InvalidArgument(f"the request body is not valid JSON: {str(exc)[:300]}") from exc
    if parsed is None:
        # An empty body means "no fields"; an explicit `null` is not a request message.
        raise InvalidArgument("the request body must be a JSON object, not null")
    try:
        # json.loads lets `\ud800` escapes (and raw surrogate bytes) through as lone
        # surrogates, anywhere, keys included; protobuf cannot encode them and its parser
        # fails on them with errors it does not wrap (a SystemError from a key lookup).
        json.dumps(parsed, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        raise InvalidArgument(
            "the request body is not valid JSON: it holds an unpaired UTF-16 surrogate"
        ) from exc
    return parsed


def _no_constant(name: str) -> object:
    # `NaN`, `Infinity` and `-Infinity` are Python's JSON extensions, not JSON (RFC 8259);
    # proto3 JSON spells these doubles as strings ("NaN"), which still parse.
    raise ValueError(f"{name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # A key given twice is ambiguous (RFC 8259 leaves the meaning open; json.loads would
    # keep the last silently and lose the first): refuse it instead of guessing.
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {key[:100]!r} is given more than once")
            seen.add(key)
    return out


def _nesting(raw: bytes | bytearray) -> int:
    """The deepest bracket nesting of a JSON text, brackets inside strings not counted.

    Checked before parsing: `json.loads` recurses per level and would raise RecursionError
    (or exhaust the stack in the protobuf parser after it) on `[[[[...`."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


async def _first_message(stream: Any) -> tuple[Any, Any]:
    return await stream.initial_metadata(), await stream.read()


async def _stream_response(
    route: Route, shape: CallShape, stream: Any, request: Request
) -> Response:
    """Server streaming. The first message is awaited before answering, so an error before it
    (NOT_FOUND, PERMISSION_DENIED...) still becomes a proper HTTP status: the caller maps it.

    An SSE stream waits for it at most SSE_FIRST_WAIT: a stream's first message may be slow
    (WatchJob sends the job's state first, but a busy backend may take a while to read it), and
    a client or proxy that sees no headers takes the request for hung.
    It then answers at once with a comment, and sends a comment every SSE_KEEPALIVE while the
    stream is quiet, so idle connections are not cut by proxies."""
    sse = not shape.raw_bytes and "text/event-stream" in request.headers.get("accept", "")
    pending = asyncio.ensure_future(_first_message(stream))
    early = False
    if sse:
        done, _ = await asyncio.wait({pending}, timeout=SSE_FIRST_WAIT)
        early = not done
    if not early:
        try:
            initial, first = await pending
        except BaseException:
            stream.cancel()
            raise
    else:
        initial, first = (), None
    # Backends set HTTP headers of a stream (content-disposition) as `x-http-*` metadata.
    # Only printable ASCII reaches the response: a value that is not would split or corrupt it.
    headers = {
        str(k)[len("x-http-") :]: str(v)
        for k, v in (initial or ())
        if str(k).startswith("x-http-") and _PRINTABLE.fullmatch(str(v))
    }

    def encode(item: Any) -> bytes:
        if shape.raw_bytes:
            return bytes(item.data)
        if sse:
            seq = getattr(item, EVENT_ID_FIELD) if shape.numbered else 0
            prefix = f"id: {seq}\n" if seq else ""
            return f"{prefix}event: message\ndata: {json.dumps(to_json(item))}\n\n".encode()
        return (json.dumps({"result": to_json(item)}) + "\n").encode()

    async def quiet_reads(read: asyncio.Future[Any]) -> AsyncIterator[bytes]:
        """Keep-alive comments until `read` is done (SSE only)."""
        while sse:
            done, _ = await asyncio.wait({read}, timeout=SSE_KEEPALIVE)
            if done:
                return
            yield b": keepalive\n\n"

    async def chunks() -> AsyncGenerator[bytes, None]:
        read: asyncio.Future[Any] = pending
        try:
            if early:
                yield b": connected\n\n"
                async for comment in quiet_reads(pending):
                    yield comment
                item: Any = (await pending)[1]
            else:
                item = first
            while item is not EOF:
                yield encode(item)
                read = asyncio.ensure_future(stream.read())
                async for comment in quiet_reads(read):
                    yield comment
                item = await read
        except grpc.aio.AioRpcError as exc:
            # The status line is gone by now; SSE clients get the error as an event.
            log.warning("stream %s ended with %s", route.grpc_path, exc.code().name)
            if sse:
                body = {"code": exc.code().name, "message": exc.details()}
                yield f"event: error\ndata: {json.dumps(body)}\n\n".encode()
        finally:
            # However the body ends (its stream's end, the client gone, the answer cut by
            # a HEAD, an error), a read still waiting and the backend call end with it.
            read.cancel()
            stream.cancel()

    if sse:
        media_type = "text/event-stream"
    elif first is EOF:
        media_type = "application/json"
    else:
        media_type = first.content_type if shape.raw_bytes else "application/x-ndjson"
    if sse:
        # Proxies (nginx) must not buffer the stream, and nothing may cache it.
        headers.update({"cache-control": "no-cache", "x-accel-buffering": "no"})
    # The response closes `chunks` when it ends (stream_responses); `on_end` covers an
    # answer ended before `chunks` ran at all (its cleanup then never runs).
    return ClosingStreamingResponse(
        chunks(),
        media_type=media_type,
        headers=headers,
        on_end=lambda: (pending.cancel(), stream.cancel()),
    )
