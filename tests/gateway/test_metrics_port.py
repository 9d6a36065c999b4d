"""The gateway's metrics on its metrics port when it has one (the Helm chart), and then not
on the public port, which the chart's ingress routes whole to the public."""

from __future__ import annotations

import asyncio

import httpx

from bytereview.core.settings import Settings
from gateway.server import serve
from launcher.up.readiness import wait_tcp
from launcher.up.wiring import free_port
from services.jobs import RunningJobsService


async def test_metrics_move_to_the_metrics_port(
    settings: Settings, jobs: RunningJobsService
) -> None:
    public, private = free_port(), free_port()
    cfg = settings.model_copy(
        update={
            "jobs_addr": f"127.0.0.1:{jobs.port}",
            "gateway_port": public,
            "metrics_port": private,
        }
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(cfg, stop))
    try:
        await wait_tcp(public, timeout=5)
        await wait_tcp(private, timeout=5)
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{public}/healthz")
            assert (await client.get(f"http://127.0.0.1:{public}/metrics")).status_code == 404
            scraped = await client.get(f"http://127.0.0.1:{private}/metrics")
        assert scraped.status_code == 200
        assert "bytereview_gateway" in scraped.text
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
