"""Runs the gateway under uvicorn until told to stop."""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn
from prometheus_client import start_http_server

from bytereview.core import Settings, settle_heap
from gateway.app import create_app
from gateway.http_deadlines import SlowClientDeadlines
from gateway.http_limits import BoundedHeadProtocol


class GatewayProtocol(BoundedHeadProtocol, SlowClientDeadlines):
    """httptools with a bound on a head's size (http_limits) and on a slow client's time
    (http_deadlines)."""


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    metrics = None
    if settings.metrics_port:
        # Where the chart's Service, NetworkPolicy and ServiceMonitor look for it, as for the
        # other components; the public port then has no /metrics (ops_routes).
        metrics, _ = start_http_server(settings.metrics_port)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="on",
        http=GatewayProtocol,
    )
    server = uvicorn.Server(config)
    # uvicorn's own signal capture would replace our handlers; the caller decides when to stop.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    # uvicorn has no start event to await.
    while not server.started and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    settle_heap()
    stop_wait = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await task
    stop_wait.cancel()
    if metrics is not None:
        metrics.shutdown()
        metrics.server_close()
