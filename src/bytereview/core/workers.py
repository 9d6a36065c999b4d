"""The shell every queue worker process shares: NATS, the jobs service, the pool, the drain,
and the watchdog that restarts a worker whose loop stopped pulling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2
from prometheus_client import start_http_server

from bytereview.core import streams, worker_runtime
from bytereview.core.auth import Credentials
from bytereview.core.batching import Answer, Batcher, Item
from bytereview.core.clients import Metadata, channel
from bytereview.core.lifecycle import settle_heap
from bytereview.core.rpc import GrpcServer
from bytereview.core.settings import Settings
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc

if TYPE_CHECKING:  # the async stub type exists in the generated .pyi only
    from typing import TypeAlias

    JobsStub: TypeAlias = worker_grpc.JobWorkerServiceAsyncStub

log = logging.getLogger(__name__)
Req = TypeVar("Req")
Resp = TypeVar("Resp")

# The jobs service (or its database) is restarting, unreachable or too slow to answer.
JOBS_DOWN_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# A caller's own file lookup (preview, inspect) answers a person: no waiting out outages.
FILE_LOOKUP_TIMEOUT_SECONDS = 30.0
WATCHDOG_SECONDS = 5.0


class WorkerStalled(RuntimeError):
    """The fetch loop stopped pulling while its queue had work: restart the process."""


def jobs_down(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in JOBS_DOWN_CODES


class JobsCalls:
    """A worker's calls to the jobs service.

    Each has a deadline: a call that never returns would hold its message, and its slot, for
    ever (#17, the wedge). A jobs service that is down or cannot reach its database
    (UNAVAILABLE, DEADLINE_EXCEEDED) is waited out in place with backoff: the task did
    nothing wrong and keeps its attempts. Every report is idempotent, so a call repeated
    after a lost answer changes nothing.
    """

    def __init__(self, stub: JobsStub, metadata: Metadata, *, timeout: float) -> None:
        self.stub = stub
        self._metadata = metadata
        self._timeout = timeout

    async def __call__(
        self, method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp], request: Req
    ) -> Resp:
        return await worker_runtime.outlast(
            lambda: self.once(method, request), is_down=jobs_down, what="the jobs service"
        )

    async def once(self, method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp], request: Req) -> Resp:
        """One try, with the deadline; outages are the caller's to wait out."""
        return await method(request, metadata=self._metadata, timeout=self._timeout)

    def batched(
        self,
        call: Callable[[list[Item]], Awaitable[Sequence[Answer]]],
        *,
        max_batch: int,
        weight: Callable[[Item], int] | None = None,
        max_weight: int = 0,
    ) -> Callable[[Item], Coroutine[Any, Any, Answer]]:
        """A call per item that goes out batched with the items other handlers submit at the
        same time (`call` makes one try of the batch, e.g. with `once`). Each submitter waits
        out an outage itself, so the wait extends its own run-time budget, and submits
        again: the retries batch together too."""
        batcher: Batcher[Item, Answer] = Batcher(
            call, max_batch=max_batch, weight=weight, max_weight=max_weight
        )

        async def one(item: Item) -> Answer:
            return await worker_runtime.outlast(
                lambda: batcher.submit(item), is_down=jobs_down, what="the jobs service"
            )

        return one


async def run_worker_process(
    settings: Settings,
    *,
    name: str,
    spec: streams.QueueSpec,
    concurrency: int,
    handler: Callable[[JobsCalls], worker_runtime.Handler],
    server: Callable[[JobsStub], AbstractAsyncContextManager[Any]],
    metadata: Metadata,
    stop: asyncio.Event,
) -> None:
    """Serve `spec`'s queue (and the component's gRPC server) until `stop`, then drain.

    With `worker_only` (extra local workers under `bytereview up`) the gRPC server is left
    to the first process, which owns the port. Raises WorkerStalled (the process exits
    non-zero) when the watchdog finds the fetch loop stuck or ended.
    """
    if settings.metrics_port and not settings.worker_only:
        start_http_server(settings.metrics_port)
    try:
        nc = await streams.connect(settings, name=name, stop=stop)
    except streams.StoppedWhileConnecting:
        log.info("%s: stopped before NATS answered", name)
        return
    js = nc.jetstream()
    await streams.declare_queue(js, spec, replicas=settings.stream_replicas)
    async with channel(settings.jobs_addr) as jobs_channel:
        jobs = worker_grpc.JobWorkerServiceStub(jobs_channel)
        calls = JobsCalls(jobs, metadata, timeout=settings.jobs_call_timeout_seconds)
        worker = worker_runtime.Worker(
            js=js,
            spec=spec,
            handler=handler(calls),
            concurrency=concurrency,
            grace_seconds=settings.drain_grace_seconds,
            max_run_seconds=settings.task_max_run_seconds,
            nc=nc,
            pod=settings.pod_name,
        )
        serving = contextlib.nullcontext() if settings.worker_only else server(jobs)
        async with serving as grpc_server:
            run = asyncio.create_task(worker.run())
            watchdog = asyncio.create_task(
                watch(
                    worker,
                    run,
                    js,
                    spec,
                    stall_seconds=settings.worker_stall_seconds,
                    every=WATCHDOG_SECONDS,
                )
            )
            stopped = asyncio.create_task(stop.wait())
            settle_heap()
            await asyncio.wait({stopped, watchdog}, return_when=asyncio.FIRST_COMPLETED)
            stalled = watchdog.result() if watchdog.done() else ""
            watchdog.cancel()
            stopped.cancel()
            if stalled and isinstance(grpc_server, GrpcServer):
                # Probes and load balancers see it first; then the drain, then a non-zero exit.
                await grpc_server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
            worker.stop()
            with contextlib.suppress(Exception):
                await run
    await nc.drain()
    if stalled:
        raise WorkerStalled(stalled)


async def watch(
    worker: worker_runtime.Worker,
    run: asyncio.Task[None],
    js: Any,
    spec: streams.QueueSpec,
    *,
    stall_seconds: float,
    every: float,
) -> str:
    """Returns (why) once the fetch loop has ended, or has not pulled for `stall_seconds`
    with a free slot while the queue holds messages nobody is working on."""
    while True:
        await asyncio.sleep(every)
        if run.done():
            error = None if run.cancelled() else run.exception()
            log.error("the fetch loop ended unexpectedly: %r", error)
            return f"the fetch loop ended: {error!r}"
        stalled = worker.pull_stalled_for()
        if stalled < stall_seconds:
            continue
        try:
            pending, ack_pending = await streams.consumer_lag(js, spec)
        except Exception as exc:  # NATS down: the loop cannot pull either; that is a wait
            log.info("watchdog: no consumer reading (%s)", exc)
            continue
        # Ack-pending counts too: messages a dead worker held are redelivered only to a pull.
        if pending or ack_pending:
            log.error("the fetch loop has not pulled for %.0f s with work queued", stalled)
            return (
                f"not pulling for {stalled:.0f} s while {pending} message(s) wait "
                f"and {ack_pending} are unacknowledged"
            )


async def file_for_caller(
    jobs: JobsStub, file: str, context: Any
) -> worker_pb.GetFileForWorkerResponse:
    """The file, looked up with the *caller's* credential, so the jobs service enforces that
    they own it; its refusal (NOT_FOUND, UNAUTHENTICATED...) is passed on as it is."""
    credentials = Credentials.from_metadata(context.invocation_metadata())
    try:
        found: worker_pb.GetFileForWorkerResponse = await jobs.GetFileForWorker(
            worker_pb.GetFileForWorkerRequest(file=file),
            metadata=credentials.metadata(),
            timeout=FILE_LOOKUP_TIMEOUT_SECONDS,
        )
    except grpc.aio.AioRpcError as exc:
        await context.abort(exc.code(), exc.details() or "")
        raise  # abort raises; this keeps type checkers sure `found` is bound
    return found
