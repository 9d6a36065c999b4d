"""The gateway app in front of the real jobs service, driven in-process through ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from bytereview.core import Settings
from gateway import create_app
from services.jobs.server import RunningJobsService


@pytest.fixture
async def client(settings: Settings, jobs: RunningJobsService) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings.model_copy(update={"jobs_addr": f"127.0.0.1:{jobs.port}"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            yield c
