"""A stopping GrpcServer lets its cancelled calls' handlers unwind before it returns."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from bytereview.core.rpc import GrpcServer, ServiceBinding, service_name
from bytereview.extract.v1 import extract_service_pb2 as extract_pb
from bytereview.extract.v1 import extract_service_pb2_grpc as extract_grpc

UNWINDING = 0.5


class Unwinding(extract_grpc.ExtractServiceServicer):
    """A call that runs until cancelled, then takes UNWINDING seconds to clean up (as a
    page read cut by the cancellation closes its database connection)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.unwound = asyncio.Event()

    async def PreviewExtraction(  # noqa: N802 (the RPC's name)
        self, request: extract_pb.PreviewExtractionRequest, context: Any
    ) -> extract_pb.PreviewExtractionResponse:
        self.started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(UNWINDING)
            self.unwound.set()
        return extract_pb.PreviewExtractionResponse()


async def test_stop_returns_once_the_cancelled_calls_have_unwound() -> None:
    servicer = Unwinding()
    server = GrpcServer(
        bindings=[
            ServiceBinding(
                servicer=servicer,
                add_to_server=extract_grpc.add_ExtractServiceServicer_to_server,
                full_name=service_name(extract_pb, "ExtractService"),
            )
        ],
        address="127.0.0.1:0",
        grace_seconds=0.1,
    )
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = extract_grpc.ExtractServiceStub(channel).PreviewExtraction(
            extract_pb.PreviewExtractionRequest()
        )
        await asyncio.wait_for(servicer.started.wait(), 10)
        await server.stop()
        # gRPC's own stop returns once it has cancelled the call; the handler's cleanup
        # would still be running, into whatever the service closes next.
        assert servicer.unwound.is_set()
        call.cancel()
