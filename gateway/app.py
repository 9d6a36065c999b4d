"""The FastAPI application: transcoded REST routes, signed storage URLs, SSE, health, metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from bytereview.core.clients import channel
from bytereview.core.errors import DomainError
from bytereview.core.settings import Settings, get_settings
from bytereview.core.storage import make_storage
from bytereview.extract.v1 import extract_service_pb2
from bytereview.ingest.v1 import ingest_service_pb2
from bytereview.jobs.v1 import jobs_service_pb2
from gateway import storage_routes, webapp
from gateway.errors import error_response, http_error
from gateway.openapi import openapi_document
from gateway.request_ids import RequestIdMiddleware
from gateway.transcoder import Route, RouteTable, build_request, routes_for, to_json

log = logging.getLogger(__name__)

MAX_JSON_BODY = 1024 * 1024
# grpc-stubs lacks aio.EOF, the sentinel a stream's read() returns at its end.
EOF: Any = getattr(grpc.aio, "EOF")  # noqa: B009
UNARY_DEADLINE = 30.0
FORWARDED = ("authorization", "x-api-key")
_PRINTABLE = re.compile(r"[\x20-\x7e]{0,4096}")

REQUESTS = Counter("bytereview_gateway_requests_total", "REST calls", ["route", "status"])
LATENCY = Histogram("bytereview_gateway_request_seconds", "REST call latency", ["route"])


def public_routes() -> RouteTable:
    """Every annotated RPC of the public services, with the backend that serves it."""
    services = [
        (jobs_service_pb2.DESCRIPTOR.services_by_name["JobService"], "jobs"),
        (jobs_service_pb2.DESCRIPTOR.services_by_name["TemplateService"], "jobs"),
        (jobs_service_pb2.DESCRIPTOR.services_by_name["UserService"], "jobs"),
        (ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"], "ingest"),
        (extract_service_pb2.DESCRIPTOR.services_by_name["ExtractService"], "extract"),
    ]
    return RouteTable([r for service, upstream in services for r in routes_for(service, upstream)])


@dataclass
class Upstreams:
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    def get(self, name: str) -> grpc.aio.Channel:
        return self.channels[name]


def _metadata(request: Request, request_id: str) -> list[tuple[str, str]]:
    out = [("x-request-id", request_id)]
    for name in FORWARDED:
        value = request.headers.get(name)
        if value:
            out.append((name, value))
    return out


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    table = public_routes()
    upstreams = Upstreams()
    storage = make_storage(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upstreams.channels = {
            "jobs": channel(settings.jobs_addr),
            "ingest": channel(settings.ingest_addr),
            "extract": channel(settings.extract_addr),
        }
        try:
            yield
        finally:
            for ch in upstreams.channels.values():
                await ch.close(grace=None)

    app = FastAPI(
        title="ByteReview API",
        version="v1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=["authorization", "x-api-key", "content-type", "x-request-id"],
            expose_headers=["x-request-id", "content-disposition"],
        )
    document = openapi_document(table)

    app.add_middleware(RequestIdMiddleware)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        stub = health_pb2_grpc.HealthStub(upstreams.get("jobs"))
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.aio.AioRpcError as exc:
            return JSONResponse({"status": "unavailable", "jobs": exc.code().name}, 503)
        serving = reply.status == health_pb2.HealthCheckResponse.SERVING
        return JSONResponse({"status": "ok" if serving else "unavailable"}, 200 if serving else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(document)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="ByteReview API")

    storage_routes.mount(app, storage=storage, settings=settings)
    webapp.mount_webapp(app, settings)

    async def transcode(request: Request) -> Response:
        path = "/v1/" + request.path_params["rest"]
        found = table.match(request.method, path)
        if found is None:
            if table.path_exists(path):
                return http_error(
                    405, "UNIMPLEMENTED", f"{request.method} is not allowed on {path}"
                )
            return http_error(404, "NOT_FOUND", f"no API route {request.method} {path}")
        route, values = found
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
        started = time.perf_counter()
        try:
            body = await _json_body(request) if route.body else None
            message = build_request(route, values, list(request.query_params.multi_items()), body)
        except DomainError as exc:
            REQUESTS.labels(route.template, "400").inc()
            return http_error(400, "INVALID_ARGUMENT", exc.message)
        metadata = _metadata(request, request.state.request_id)
        ch = upstreams.get(route.upstream)
        if route.server_streaming:
            return await _stream(ch, route, message, metadata, request)
        call = ch.unary_unary(
            route.grpc_path,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=_response_class(route).FromString,
        )
        try:
            reply = await call(message, metadata=metadata, timeout=UNARY_DEADLINE)
        except grpc.aio.AioRpcError as exc:
            REQUESTS.labels(route.template, str(exc.code().value[0])).inc()
            return error_response(exc.code(), exc.details() or "")
        finally:
            LATENCY.labels(route.template).observe(time.perf_counter() - started)
        REQUESTS.labels(route.template, "200").inc()
        return JSONResponse(to_json(reply))

    # A plain Starlette route: the transcoder parses and checks everything itself, so
    # FastAPI's per-call dependency solving would be pure overhead on every API call.
    app.router.add_route(
        "/v1/{rest:path}",
        transcode,
        methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
        include_in_schema=False,
    )
    return app


def _response_class(route: Route) -> Any:
    from gateway.transcoder import message_class

    return message_class(route.method.output_type)


async def _json_body(request: Request) -> object:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_JSON_BODY:
        raise _invalid(f"the request body is larger than {MAX_JSON_BODY} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BODY:
            raise _invalid(f"the request body is larger than {MAX_JSON_BODY} bytes")
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _invalid(f"the request body is not valid JSON: {exc}") from exc


def _invalid(message: str) -> DomainError:
    from bytereview.core.errors import InvalidArgument

    return InvalidArgument(message)


async def _stream(
    ch: grpc.aio.Channel,
    route: Route,
    message: Any,
    metadata: list[tuple[str, str]],
    request: Request,
) -> Response:
    """Server streaming: HttpBody chunks as raw bytes; other messages as SSE or NDJSON."""
    call = ch.unary_stream(
        route.grpc_path,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=_response_class(route).FromString,
    )
    if route.method.name == "WatchJob" and hasattr(message, "after_sequence"):
        last_id = request.headers.get("last-event-id", "")
        if last_id.isdigit() and not message.after_sequence:
            message.after_sequence = int(last_id)
    stream = call(message, metadata=metadata)
    # Read the first message before answering, so errors become proper HTTP statuses.
    try:
        initial = await stream.initial_metadata()
        first: Any = await stream.read()
    except grpc.aio.AioRpcError as exc:
        return error_response(exc.code(), exc.details() or "")
    headers = {
        str(k)[len("x-http-") :]: str(v) for k, v in (initial or ()) if str(k).startswith("x-http-")
    }
    is_body = route.method.output_type.full_name == "google.api.HttpBody"
    sse = "text/event-stream" in request.headers.get("accept", "")

    async def chunks() -> AsyncIterator[bytes]:
        item: Any = first
        try:
            while item is not EOF:
                if is_body:
                    yield bytes(item.data)
                elif sse:
                    payload = json.dumps(to_json(item))
                    seq = getattr(item, "sequence", None)
                    prefix = f"id: {seq}\n" if seq else ""
                    yield f"{prefix}event: message\ndata: {payload}\n\n".encode()
                else:
                    yield (json.dumps({"result": to_json(item)}) + "\n").encode()
                item = await stream.read()
        except grpc.aio.AioRpcError as exc:
            log.warning("stream %s ended with %s", route.grpc_path, exc.code().name)
            if sse:
                body = {"code": exc.code().name, "message": exc.details()}
                yield f"event: error\ndata: {json.dumps(body)}\n\n".encode()
        except asyncio.CancelledError:
            stream.cancel()
            raise

    if first is EOF:
        first_type = "application/json"
    else:
        first_type = first.content_type if is_body else "application/x-ndjson"
    media_type = "text/event-stream" if sse and not is_body else first_type
    return StreamingResponse(chunks(), media_type=media_type, headers=headers)
