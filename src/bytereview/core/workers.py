"""The shell every queue worker process shares: NATS, the jobs service, the pool, the drain."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import grpc
from prometheus_client import start_http_server

from bytereview.core import streams, worker_runtime
from bytereview.core.auth import Credentials
from bytereview.core.clients import channel
from bytereview.core.lifecycle import settle_heap
from bytereview.core.settings import Settings
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc

if TYPE_CHECKING:  # the async stub type exists in the generated .pyi only
    from typing import TypeAlias

    JobsStub: TypeAlias = worker_grpc.JobWorkerServiceAsyncStub


async def run_worker_process(
    settings: Settings,
    *,
    name: str,
    spec: streams.QueueSpec,
    concurrency: int,
    handler: Callable[[JobsStub], worker_runtime.Handler],
    server: Callable[[JobsStub], AbstractAsyncContextManager[Any]],
    stop: asyncio.Event,
) -> None:
    """Serve `spec`'s queue (and the component's gRPC server) until `stop`, then drain.

    With `worker_only` (extra local workers under `bytereview up`) the gRPC server is left
    to the first process, which owns the port.
    """
    if settings.metrics_port and not settings.worker_only:
        start_http_server(settings.metrics_port)
    nc = await streams.connect(settings, name=name)
    js = nc.jetstream()
    await streams.declare_queue(js, spec, replicas=settings.stream_replicas)
    async with channel(settings.jobs_addr) as jobs_channel:
        jobs = worker_grpc.JobWorkerServiceStub(jobs_channel)
        worker = worker_runtime.Worker(
            js=js,
            spec=spec,
            handler=handler(jobs),
            concurrency=concurrency,
            grace_seconds=settings.drain_grace_seconds,
            nc=nc,
            pod=settings.pod_name,
        )
        serving = contextlib.nullcontext() if settings.worker_only else server(jobs)
        async with serving:
            run = asyncio.create_task(worker.run())
            settle_heap()
            await stop.wait()
            worker.stop()
            await run
    await nc.drain()


async def file_for_caller(
    jobs: JobsStub, file: str, context: Any
) -> worker_pb.GetFileForWorkerResponse:
    """The file, looked up with the *caller's* credential, so the jobs service enforces that
    they own it; its refusal (NOT_FOUND, UNAUTHENTICATED...) is passed on as it is."""
    credentials = Credentials.from_metadata(context.invocation_metadata())
    try:
        found: worker_pb.GetFileForWorkerResponse = await jobs.GetFileForWorker(
            worker_pb.GetFileForWorkerRequest(file=file), metadata=credentials.metadata()
        )
    except grpc.aio.AioRpcError as exc:
        await context.abort(exc.code(), exc.details() or "")
        raise  # abort raises; this keeps type checkers sure `found` is bound
    return found
