"""The gRPC backends the gateway forwards to, one channel each, open for the app's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import grpc
from fastapi import FastAPI

from bytereview.core import Settings, channel


class Upstreams:
    """Channels by backend name ("jobs", "ingest", "extract"), opened by the app's lifespan."""

    def __init__(self, addresses: Mapping[str, str]) -> None:
        self._addresses = dict(addresses)
        self._channels: dict[str, grpc.aio.Channel] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Upstreams:
        return cls(
            {
                "jobs": settings.jobs_addr,
                "ingest": settings.ingest_addr,
                "extract": settings.extract_addr,
            }
        )

    def get(self, name: str) -> grpc.aio.Channel:
        return self._channels[name]

    @asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        # Channels are bound to the running event loop, so they open here, not at import.
        self._channels = {name: channel(address) for name, address in self._addresses.items()}
        try:
            yield
        finally:
            for ch in self._channels.values():
                await ch.close(grace=None)
            self._channels = {}
