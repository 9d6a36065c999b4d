"""Routes for operators rather than API users: liveness, readiness, metrics, the API's docs."""

from __future__ import annotations

from typing import Any

import grpc
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.upstreams import Upstreams

READY_TIMEOUT_SECONDS = 2.0


def mount(
    app: FastAPI, *, upstreams: Upstreams, openapi: dict[str, Any], public_metrics: bool = True
) -> None:
    """The routes; `/metrics` only with `public_metrics` (no metrics port of its own)."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        # Ready means the jobs service answers: nearly every API call needs it.
        stub = health_pb2_grpc.HealthStub(upstreams.get("jobs"))
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=READY_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            return JSONResponse({"status": "unavailable", "jobs": exc.code().name}, 503)
        serving = reply.status == health_pb2.HealthCheckResponse.SERVING
        return JSONResponse({"status": "ok" if serving else "unavailable"}, 200 if serving else 503)

    if public_metrics:
        # Without a metrics port (`bytereview up`) the metrics are here. With one (the Helm
        # chart), they are there only: the ingress routes every path of this port to the
        # public, and the metrics port was declared with nothing listening on it.
        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json() -> JSONResponse:
        return JSONResponse(openapi)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="ByteReview API")
