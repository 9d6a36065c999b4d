"""A streamed answer that ends early (its client gone, a HEAD cut after the first chunk)
ends its upstream gRPC call at once, over the gateway's real HTTP server: the backend's
per-user slots (open exports, watches) are given back, so a user who abandons a few
downloads or live pages is not refused (429) for the next ones.

Python's cyclic garbage collector is off during these tests (`no_cyclic_gc`), in the one
process that runs the gateway and the jobs service: a call left to the collection of its
generator (whose traceback holds it in a reference cycle) then stays open for the whole
test, as it would in production until the collector's next full pass, instead of ending at
a random moment."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest

from bytereview.core import DEV_TOKEN
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.jobs import RunningJobsService
from services.jobs.domain.export.exporter import EXPORTS_PER_USER
from services.jobs.domain.jobs import watch
from tests.services.jobs.many_results import job_with_results

BEARER = {"Authorization": f"Bearer {DEV_TOKEN}"}
SSE = {"Accept": "text/event-stream"}


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


@pytest.fixture
async def job(jobs: RunningJobsService, channel: grpc.aio.Channel) -> str:
    """A job of many results (an export of many chunks), not final (a watch stays open)."""
    return await job_with_results(
        jobs_grpc.JobServiceStub(channel), worker_grpc.JobWorkerServiceStub(channel), jobs
    )


@pytest.fixture
async def client(port: int) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=BEARER, timeout=10
    ) as c:
        yield c


async def _no_watch_open() -> None:
    """The jobs service's watch slots all given back, within a moment (the cancellation
    travels gateway -> jobs service asynchronously), never at a collection."""
    for _ in range(40):
        if not watch._watching:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"watches still open in the jobs service: {watch._watching}")


async def _first_chunk_then_gone(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> None:
    """Opens the stream, reads its first chunk, and leaves (httpx closes a connection whose
    answer was not read to its end).

    A 429 is waited out for a moment only: a cancelled export gives its slot back once the
    page it is reading is read (services/jobs: `uncut`), so the next may come a few
    milliseconds too soon. One left open (to a collection: none here) never gives it back."""
    for _ in range(60):
        async with client.stream("GET", url, headers=headers) as answer:
            if answer.status_code == 429:
                await answer.aread()
                await asyncio.sleep(0.05)
                continue
            assert answer.status_code == 200, (await answer.aread()).decode()
            assert await anext(answer.aiter_raw(), b"")
            return
    raise AssertionError(f"{url}: still refused (429) after 3 s")


@pytest.mark.usefixtures("no_cyclic_gc")
async def test_a_head_on_a_watch_gives_its_watch_back(client: httpx.AsyncClient, job: str) -> None:
    # The watch never ends on its own (the job is not final): HeadAsGet cuts it after its
    # first chunk. Its generator stayed suspended there, and the jobs service kept the
    # watch (one of MAX_WATCHERS_PER_USER) until a full collection: the 17th HEAD was a 429.
    for n in range(watch.MAX_WATCHERS_PER_USER + 2):
        answer = await client.head(f"/v1/{job}:watch", headers=SSE if n % 2 else None)
        assert answer.status_code == 200, (n, answer.status_code)
        await _no_watch_open()


@pytest.mark.usefixtures("no_cyclic_gc")
async def test_a_client_gone_after_the_first_chunk_gives_its_slot_back(
    client: httpx.AsyncClient, job: str
) -> None:
    # More than a user may hold at once, one after the other: each is accepted.
    # With uvicorn's HTTP server (ASGI 2.3) a client gone reaches the body generator as a
    # cancellation while it awaits its next message, so its own cleanup ran here before
    # stream_responses too; this guards that path (a server raising from `send` instead,
    # as ASGI 2.4 allows, left it suspended like a HEAD's).
    for _ in range(EXPORTS_PER_USER + 2):
        await _first_chunk_then_gone(client, f"/v1/{job}:export?format=csv")
    for _ in range(watch.MAX_WATCHERS_PER_USER + 2):
        await _first_chunk_then_gone(client, f"/v1/{job}:watch", SSE)
        await _no_watch_open()
