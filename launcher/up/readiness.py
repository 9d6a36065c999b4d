"""Readiness probes: `up` starts the next process only when the one it needs is serving."""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def wait_tcp(port: int, timeout: float = 30) -> None:
    """Something accepts connections on 127.0.0.1:`port` (nats-server has no health RPC)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


async def wait_grpc_serving(address: str, timeout: float = 60) -> None:
    """The gRPC health service at `address` answers SERVING."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{address} is not serving after {timeout}s")


async def wait_http(url: str, timeout: float = 60) -> None:
    """`url` answers 200 (the gateway's /readyz)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url, timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} is not ready after {timeout}s")
