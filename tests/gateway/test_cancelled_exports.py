"""An export its client stops reading half-way ends quietly in the jobs service: no error
logged, its database connection back in the pool whole (not invalidated as broken), the next
export served as usual."""

from __future__ import annotations

import asyncio
import logging

import grpc
import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool

from bytereview.core import DEV_TOKEN
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.jobs import RunningJobsService
from tests.services.jobs.many_results import EXPORTED, job_with_results

BEARER = {"Authorization": f"Bearer {DEV_TOKEN}"}


def _engines(jobs: RunningJobsService) -> list[AsyncEngine]:
    makers = [jobs.ctx.sessions, jobs.ctx.read_sessions]
    return [maker.kw["bind"] for maker in makers if maker is not None]


async def _all_checked_in(jobs: RunningJobsService) -> None:
    for _ in range(100):
        if all(engine.pool.checkedout() == 0 for engine in _engines(jobs)):  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a cancelled export kept its database connection")


async def test_a_client_gone_mid_export_ends_it_quietly(
    port: int,
    jobs: RunningJobsService,
    channel: grpc.aio.Channel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = await job_with_results(
        jobs_grpc.JobServiceStub(channel), worker_grpc.JobWorkerServiceStub(channel), jobs
    )
    caplog.set_level(logging.INFO)
    # A read cut inside the driver makes SQLAlchemy take its connection for broken.
    invalidated: list[str] = []

    def on_invalidate(_conn: object, _record: object, exc: BaseException | None) -> None:
        invalidated.append(repr(exc))

    event.listen(Pool, "invalidate", on_invalidate)
    url = f"/v1/{job}:export"
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=BEARER) as client:
            # Gone after 1, 2, 3... chunks: the service is cut at different points of its reads.
            for read in range(1, 6):
                for fmt in ("csv", "json", "xlsx"):
                    async with client.stream("GET", url, params={"format": fmt}) as answer:
                        assert answer.status_code == 200
                        chunks = answer.aiter_raw()
                        for _ in range(read):
                            await anext(chunks, b"")
                    # The connection was closed with the answer half read (httpx drops it).
                    await _all_checked_in(jobs)
            warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert not warned, [f"{r.name}: {r.getMessage()}" for r in warned]
            assert invalidated == []
            # The pool serves the next export whole.
            whole = await client.get(url, params={"format": "csv"})
            assert whole.status_code == 200
            assert whole.content.count(b"\n") == EXPORTED + 1
    finally:
        event.remove(Pool, "invalidate", on_invalidate)
    await _all_checked_in(jobs)
