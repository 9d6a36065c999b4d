"""HEAD is answered as GET without its body (gateway/head_requests.py), over a socket to the
gateway's real HTTP server: a body sent after a HEAD would be read as the start of the next
answer on the same connection, so each HEAD here is followed by a GET on that connection."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import grpc
import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from starlette.types import Receive, Scope, Send

from bytereview.core import DEV_TOKEN
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from gateway.head_requests import HeadAsGet
from services.jobs import RunningJobsService
from tests.services.jobs.many_results import EXPORTED, job_with_results

# The tests on the gateway's real server (the middleware's own test needs none).
ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
AUTH = f"Authorization: Bearer {DEV_TOKEN}\r\n"
BEARER = {"Authorization": f"Bearer {DEV_TOKEN}"}


async def _head_then_get(port: int, path: str, headers: str = "") -> list[dict[str, str]]:
    """The answers' status lines and headers, in order, with the GET's body length checked."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        answers: list[dict[str, str]] = []
        for method in ("HEAD", "GET"):
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n".encode())
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            status, *lines = head.decode().strip().split("\r\n")
            fields = dict(line.lower().split(": ", 1) for line in lines)
            fields["status"] = status.split(" ")[1]
            answers.append(fields)
        get = answers[1]
        if "content-length" in get:
            await asyncio.wait_for(reader.readexactly(int(get["content-length"])), timeout=10)
        else:
            assert get.get("transfer-encoding") == "chunked"
            await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), timeout=10)
        # Nothing more: a HEAD's body would have shown up as garbage before the GET's head.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), timeout=0.3)
        return answers
    finally:
        writer.close()


@ON_SQLITE
@pytest.mark.parametrize(
    ("path", "headers", "status", "kind"),
    [
        ("/healthz", "", "200", "application/json"),
        ("/v1/jobs", AUTH, "200", "application/json"),
        ("/v1/jobs", "", "401", "application/json"),  # checked as the GET would be
        ("/app/jobs", "", "200", "text/html"),
        ("/openapi.json", "", "200", "application/json"),
    ],
)
async def test_head_answers_what_get_would_without_the_body(
    port: int, path: str, headers: str, status: str, kind: str
) -> None:
    head, get = await _head_then_get(port, path, headers)
    assert head["status"] == get["status"] == status
    assert head["content-type"].startswith(kind)
    assert head["content-type"] == get["content-type"]
    assert head.get("content-length") == get.get("content-length")


@ON_SQLITE
async def test_a_head_on_an_export_ends_with_its_head(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """An export is streamed: HEAD answers with the export's head (type, file name) and ends
    there, and the connection serves the GET after it as usual, nothing logged as failed."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        created = await client.post(
            "/v1/jobs",
            headers={"Authorization": f"Bearer {DEV_TOKEN}"},
            json={"files": [{"path": "a.pdf", "sizeBytes": 3}]},
        )
        job = created.json()["job"]["name"]
    head, get = await _head_then_get(port, f"/v1/{job}:export?format=csv", AUTH)
    assert head["status"] == get["status"] == "200"
    assert head["content-type"] == get["content-type"]
    assert head["content-disposition"] == get["content-disposition"]
    # The gateway ended the HEAD on purpose: nothing of it is an error (uvicorn logs an app
    # that raised as "Exception in ASGI application").
    gateway = [r for r in caplog.records if r.name.startswith(("uvicorn", "gateway"))]
    assert not [r for r in gateway if r.levelname in ("ERROR", "CRITICAL")]


async def test_a_head_stops_a_stream_after_its_first_chunk() -> None:
    """A HEAD does not produce a streamed body past its first chunk: a stream that never
    ends (an event stream) answers a HEAD all the same, at once."""
    produced = 0

    async def endless(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal produced
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            produced += 1
            await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
            await asyncio.sleep(0)  # lets the test's timeout fire if the HEAD never ends

    transport = httpx.ASGITransport(app=HeadAsGet(endless))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        answer = await asyncio.wait_for(client.head("/stream"), timeout=10)
    assert answer.status_code == 200
    assert answer.content == b""
    assert produced == 1


@ON_SQLITE
async def test_a_head_on_an_export_reads_no_results(
    port: int, jobs: RunningJobsService, channel: grpc.aio.Channel
) -> None:
    """A HEAD on an export answers the GET's head (status, type, file name) without reading
    the job's results: only the GET reads them. Cutting the HEAD's body after its first chunk
    was not enough: the jobs service reads ahead of what the gateway took (gRPC's flow
    control window and its chunks of many rows), so a HEAD read most of an export."""
    job = await job_with_results(
        jobs_grpc.JobServiceStub(channel), worker_grpc.JobWorkerServiceStub(channel), jobs
    )
    pages: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if re.search(r"FROM extraction_results\b.*ORDER BY", statement, re.S):
            pages.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            url = f"/v1/{job}:export"
            for fmt in ("csv", "json", "xlsx"):
                head = await client.head(url, params={"format": fmt}, headers=BEARER)
                assert head.status_code == 200, head.text
                assert head.content == b""
                # What the service would still read after the HEAD's answer would show here.
                await asyncio.sleep(0.5)
                assert pages == [], f"a HEAD ({fmt}) read {len(pages)} pages of results"
                get = await client.get(url, params={"format": fmt}, headers=BEARER)
                assert get.status_code == 200
                for name in ("content-type", "content-disposition"):
                    assert head.headers[name] == get.headers[name]
                assert len(pages) > 1  # the GET read them (the count sees reads)
                pages.clear()
                if fmt == "csv":
                    assert get.content.count(b"\n") == EXPORTED + 1
            missing = await client.head(url.replace(job, "jobs/" + "0" * 32), headers=BEARER)
            assert missing.status_code == 404
            bad = await client.head(url, params={"format": "pdf"}, headers=BEARER)
            assert bad.status_code == 400
    finally:
        event.remove(Engine, "before_cursor_execute", count)
