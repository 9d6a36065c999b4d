"""SSE watches answer at once with the job's state, keep idle connections alive, and are
capped per user (#14)."""

from __future__ import annotations

import asyncio
import json
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


def _watch(app: FastAPI, job: str, *, last_event_id: str = "") -> OpenRequest:
    opened = OpenRequest()
    resume = [(b"last-event-id", last_event_id.encode())] if last_event_id else []
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
            *resume,
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


def _event(body: bytes) -> tuple[int, dict[str, Any]]:
    """(id, data) of one SSE event as the gateway sends it."""
    lines = dict(line.split(": ", 1) for line in body.decode().strip().split("\n"))
    assert lines["event"] == "message"
    return int(lines["id"]), json.loads(lines["data"])


async def test_an_idle_watch_answers_at_once_with_the_state_and_keeps_alive(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proxy, "SSE_KEEPALIVE", 0.2)
    opened = _watch(app, await _idle_job(app))
    start = await opened.message()
    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    sequence, state = _event((await opened.message())["body"])
    assert (state["kind"], state["jobStatus"]) == ("job.snapshot", "PENDING_UPLOAD")
    assert state["counters"]["filesTotal"] == 1
    assert sequence == int(state["sequence"]) >= 1
    assert (await opened.message())["body"] == b": keepalive\n\n"
    await opened.close()


async def test_a_slow_first_message_still_answers_at_once(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any stream whose first message is late gets its headers and a comment first."""
    monkeypatch.setattr(proxy, "SSE_FIRST_WAIT", 0.0)
    opened = _watch(app, await _idle_job(app))
    assert (await opened.message())["status"] == 200
    assert (await opened.message())["body"].startswith(b": connected")
    _, state = _event((await opened.message())["body"])
    assert state["kind"] == "job.snapshot"
    await opened.close()


async def test_a_late_joiner_on_a_finished_job_gets_its_state_at_once(app: FastAPI) -> None:
    job = await _idle_job(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        assert (await client.post(f"/v1/{job}:cancel", headers=AUTH, json={})).status_code == 200
        trail = (await client.get(f"/v1/{job}/events", headers=AUTH)).json()["events"]
    opened = _watch(app, job)
    assert (await opened.message())["status"] == 200
    body = await opened.message()
    sequence, state = _event(body["body"])
    assert (state["kind"], state["jobStatus"], state["toStatus"]) == (
        "job.snapshot",
        "CANCELLED",
        "CANCELLED",
    )
    assert sequence == int(trail[-1]["sequence"])
    # The job is final: nothing more will happen, the stream ends.
    ended = body if not body.get("more_body", True) else await opened.message()
    assert ended.get("more_body") is False
    await opened.close()


async def test_a_watch_on_a_changing_job_gets_its_state_then_the_events(app: FastAPI) -> None:
    job = await _idle_job(app)
    opened = _watch(app, job)
    assert (await opened.message())["status"] == 200
    start, state = _event((await opened.message())["body"])
    assert (state["kind"], state["jobStatus"]) == ("job.snapshot", "PENDING_UPLOAD")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        assert (await client.post(f"/v1/{job}:cancel", headers=AUTH, json={})).status_code == 200
        trail = (await client.get(f"/v1/{job}/events", headers=AUTH)).json()["events"]
    seen = []
    while (message := await opened.message()).get("body"):
        if not message["body"].startswith(b":"):
            seen.append(_event(message["body"]))
    assert [sequence for sequence, _ in seen] == [
        int(e["sequence"]) for e in trail if int(e["sequence"]) > start
    ]
    assert [event["kind"] for _, event in seen] == ["job.status"]
    assert seen[-1][1]["toStatus"] == "CANCELLED"
    await opened.close()


async def test_a_reconnecting_browser_gets_the_state_then_what_it_missed(app: FastAPI) -> None:
    job = await _idle_job(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        trail = (await client.get(f"/v1/{job}/events", headers=AUTH)).json()["events"]
        assert (await client.post(f"/v1/{job}:cancel", headers=AUTH, json={})).status_code == 200
    seen_up_to = int(trail[-1]["sequence"])
    opened = _watch(app, job, last_event_id=str(seen_up_to))
    assert (await opened.message())["status"] == 200
    sequence, state = _event((await opened.message())["body"])
    # The current state, numbered as the browser's own position: nothing missed is skipped.
    assert (sequence, state["kind"], state["jobStatus"]) == (
        seen_up_to,
        "job.snapshot",
        "CANCELLED",
    )
    sequence, missed = _event((await opened.message())["body"])
    assert (sequence, missed["kind"], missed["toStatus"]) == (
        seen_up_to + 1,
        "job.status",
        "CANCELLED",
    )
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
