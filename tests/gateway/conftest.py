"""The gateway app in front of the real jobs service: driven in-process through ASGI
(`client`), or served by its real HTTP server on a port (`port`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from bytereview.core import Settings
from gateway import create_app
from gateway.server import serve
from launcher.up.readiness import wait_tcp
from launcher.up.wiring import free_port
from services.jobs.server import RunningJobsService


@pytest.fixture
async def client(settings: Settings, jobs: RunningJobsService) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings.model_copy(update={"jobs_addr": f"127.0.0.1:{jobs.port}"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            yield c


@pytest.fixture
async def port(settings: Settings, jobs: RunningJobsService) -> AsyncIterator[int]:
    chosen = free_port()
    cfg = settings.model_copy(
        update={"jobs_addr": f"127.0.0.1:{jobs.port}", "gateway_port": chosen}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(cfg, stop))
    await wait_tcp(chosen, timeout=5)
    yield chosen
    stop.set()
    await asyncio.wait_for(task, timeout=30)
