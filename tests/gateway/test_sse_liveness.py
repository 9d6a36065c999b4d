"""SSE watches answer at once, keep idle connections alive, and are capped per user (#14)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bytereview.core import DEV_TOKEN, Settings
from gateway import create_app, proxy
from services.jobs.domain.jobs import watch
from services.jobs.server import RunningJobsService

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


@pytest.fixture
async def app(settings: Settings, jobs: RunningJobsService) -> AsyncIterator[FastAPI]:
    made = create_app(settings.model_copy(update={"jobs_addr": f"127.0.0.1:{jobs.port}"}))
    async with made.router.lifespan_context(made):
        yield made


@dataclass
class OpenRequest:
    """A request driven through raw ASGI: each message the app sends is seen as it is sent
    (httpx's ASGI transport only returns once the whole body is there)."""

    sent: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def message(self, timeout: float = 3.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.sent.get(), timeout)

    async def close(self) -> None:
        self.gone.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)


def _watch(app: FastAPI, job: str) -> OpenRequest:
    opened = OpenRequest()
    path = f"/v1/{job}:watch"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gateway.test"),
            (b"authorization", AUTH["Authorization"].encode()),
            (b"accept", b"text/event-stream"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("gateway.test", 80),
    }
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await opened.gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        await opened.sent.put(dict(message))

    opened.task = asyncio.create_task(app(scope, receive, send))
    return opened


async def _idle_job(app: FastAPI) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        created = await client.post(
            "/v1/jobs", headers=AUTH, json={"files": [{"path": "a.pdf", "sizeBytes": 3}]}
        )
    return str(created.json()["job"]["name"])


async def test_an_idle_watch_answers_at_once_and_keeps_alive(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proxy, "SSE_KEEPALIVE", 0.2)
    opened = _watch(app, await _idle_job(app))
    start = await opened.message()
    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    assert (await opened.message())["body"].startswith(b": connected")
    assert (await opened.message())["body"] == b": keepalive\n\n"
    await opened.close()


async def test_watches_are_capped_per_user(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "MAX_WATCHERS_PER_USER", 2)
    job = await _idle_job(app)
    held = [_watch(app, job) for _ in range(2)]
    for opened in held:
        assert (await opened.message())["status"] == 200
    refused = _watch(app, job)
    assert (await refused.message())["status"] == 429
    await refused.close()
    for opened in held:
        await opened.close()
    # Closed watches give their slots back.
    await asyncio.sleep(0.5)
    again = _watch(app, job)
    assert (await again.message())["status"] == 200
    await again.close()
