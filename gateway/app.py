"""Assembly of the gateway: one FastAPI app from its parts, in the order routes must match.

- `ops_routes`: liveness, readiness, metrics, the OpenAPI document and its docs page;
- `storage_routes`: upload/download of bytes through signed URLs (local storage);
- `proxy`: every other `/v1/...` call, transcoded onto the gRPC APIs.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from bytereview.core import Settings, get_settings, make_storage
from gateway import local_hosts, ops_routes, storage_routes, webapp
from gateway.errors import http_error, method_not_allowed
from gateway.head_requests import HeadAsGet
from gateway.openapi import openapi_document
from gateway.proxy import METHODS, TranscodingProxy, public_routes
from gateway.request_ids import RequestIdMiddleware
from gateway.upstreams import Upstreams


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway's ASGI app; channels to the backends open and close with its lifespan."""
    settings = settings or get_settings()
    table = public_routes()
    upstreams = Upstreams.from_settings(settings)
    app = FastAPI(
        title="ByteReview API",
        version="v1",
        lifespan=upstreams.lifespan,
        # The API's document is generated from the protos (ops_routes serves it), not FastAPI's.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=METHODS,
            allow_headers=[
                "authorization",
                "x-api-key",
                "content-type",
                "x-request-id",
                "if-match",
            ],
            expose_headers=["x-request-id", "content-disposition"],
        )
    if local_hosts.needs_host_check(settings):
        # Inside the request id's middleware: the refusal's body carries the id.
        app.add_middleware(local_hosts.LocalHostsOnly, public_url=settings.public_url)
    app.add_middleware(RequestIdMiddleware)
    # Outermost: every route inside sees a HEAD as the GET it stands for.
    app.add_middleware(HeadAsGet)

    # Paths no route matches at all (e.g. a segment holding a newline, which `{rest:path}`
    # does not match) get the API's error body too, not Starlette's `{"detail": ...}`.
    @app.exception_handler(404)
    async def not_found(request: Request, _: Exception) -> Response:
        return http_error(404, "NOT_FOUND", f"no API route {request.method} {request.url.path}")

    # A method a route of ours does not serve (POST /healthz) gets the API's error body with
    # the route's `Allow`, not Starlette's `{"detail": ...}`; the proxy answers its own 405s.
    @app.exception_handler(405)
    async def not_allowed(request: Request, exc: Exception) -> Response:
        allow = {k.lower(): v for k, v in (getattr(exc, "headers", None) or {}).items()}
        return method_not_allowed(request.method, request.url.path, allow.get("allow", ""))

    # A client gone mid-body (a cancelled upload, a Content-Length larger than what it sent)
    # is not our error: the route cleaned up (an upload's partial file is dropped), nobody is
    # left to read an answer, and the log got a traceback for it.
    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, _: Exception) -> Response:
        return Response(status_code=499)

    ops_routes.mount(
        app,
        upstreams=upstreams,
        openapi=openapi_document(table, max_upload_bytes=settings.max_upload_bytes),
        public_metrics=not settings.metrics_port,
    )
    # Before the proxy: its `/v1/{rest:path}` would otherwise take `/v1/storage/objects`.
    storage_routes.mount(app, storage=make_storage(settings), settings=settings)
    TranscodingProxy(table, upstreams, worker_token=settings.secret("worker_token")).mount(app)
    webapp.mount_webapp(app, settings)
    return app
