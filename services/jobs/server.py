"""Runs the jobs service: migrations, seed rows, streams, outbox relay, gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import start_http_server

from bytereview.core import streams
from bytereview.core.auth import Credentials, Principal, TokenAuthenticator
from bytereview.core.lifecycle import settle_heap
from bytereview.core.rpc import GrpcServer
from bytereview.core.settings import Settings
from bytereview.core.storage import make_storage
from services.jobs.api import bindings, caller_hook
from services.jobs.domain import (
    Admin,
    AdminRole,
    Cleanup,
    CleanupReport,
    DeadLetters,
    IngestReports,
    JobsContext,
    QueueReconciler,
    QueueSource,
    TaskBuilder,
    TaskReports,
    TaskSettler,
    Users,
    refresh_forever,
)
from services.jobs.messaging import DeadLetterMonitor, EventHub, OutboxRelay, WorkerLoads
from services.jobs.store import db, seed_database

log = logging.getLogger(__name__)


@dataclass
class RunningJobsService:
    ctx: JobsContext
    server: GrpcServer
    relay: OutboxRelay
    reconciler: QueueReconciler

    @property
    def port(self) -> int:
        return self.server.port


async def prepare_database(settings: Settings) -> None:
    """Migrate to head and insert seed rows (what `bytereview migrate` does)."""
    await db.upgrade_async(settings.database_url)
    engine = db.create_engine(settings.database_url)
    try:
        await seed_database(db.session_factory(engine))
    finally:
        await engine.dispose()


@asynccontextmanager
async def jobs_service(
    settings: Settings, *, migrate: bool = True, stop: asyncio.Event | None = None
) -> AsyncIterator[RunningJobsService]:
    """The jobs service, started; stopped gracefully on exit. `stop` set while it waits for
    NATS: StoppedWhileConnecting (streams.connect)."""
    if migrate:
        await prepare_database(settings)
    engine = db.create_engine(settings.database_url, pool_size=settings.database_pool_size)
    sessions = db.session_factory(engine)
    # Reads on their own pool (PostgreSQL; SQLite reads have sync_reads): a progress read
    # must not wait for a connection behind reports queued on a job's row lock.
    read_engine = (
        None
        if db.is_sqlite(settings.database_url)
        else db.create_engine(
            settings.database_url, pool_size=max(2, settings.database_pool_size // 2)
        )
    )
    try:
        nc = await streams.connect(settings, name="bytereview-jobs", stop=stop)
    except streams.StoppedWhileConnecting:
        await engine.dispose()
        if read_engine is not None:
            await read_engine.dispose()
        raise
    js = nc.jetstream()
    for spec in (streams.ingest_queue(settings), streams.extract_queue(settings)):
        await streams.declare_queue(js, spec, replicas=settings.stream_replicas)
    hub = EventHub()
    await hub.attach(nc)
    sync_reads = db.sync_reads(settings.database_url)
    ctx = JobsContext(
        sessions=sessions,
        storage=make_storage(settings),
        settings=settings,
        hub=hub,
        sync_reads=sync_reads,
        read_sessions=None if read_engine is None else db.session_factory(read_engine),
    )
    users = Users(ctx)
    tokens = TokenAuthenticator(settings)

    async def authenticate(credentials: Credentials) -> Principal:
        if credentials.bearer:
            return await tokens.authenticate_bearer(credentials.bearer)
        return await users.principal_for_api_key(credentials.api_key)

    relay = OutboxRelay(sessions=sessions, js=js, wakeup=hub.outbox_ready)
    relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
    builder = TaskBuilder(ctx)
    builder_task = asyncio.create_task(builder.run(), name="task-builder")
    settler = TaskSettler(ctx)
    settler_task = asyncio.create_task(settler.run(), name="task-settler")
    queues = [streams.ingest_queue(settings), streams.extract_queue(settings)]
    handlers = DeadLetters(IngestReports(ctx), TaskReports(ctx))
    dead_letters = DeadLetterMonitor(
        nc=nc, js=js, queues=[(queues[0], handlers.ingest), (queues[1], handlers.extract)]
    )
    await dead_letters.start()
    reconciler = QueueReconciler(
        ctx=ctx,
        js=js,
        ingest=queues[0],
        extract=queues[1],
        every=settings.outbox_reconcile_seconds,
        replicas=settings.stream_replicas,
    )
    reconcile_task = asyncio.create_task(reconciler.run(), name="queue-reconciler")
    loads = WorkerLoads()
    await loads.attach(nc)
    admin = Admin(
        ctx, QueueSource(js=js, pools=[("ingest", queues[0]), ("extract", queues[1])], loads=loads)
    )
    stopping = asyncio.Event()
    metrics_task = asyncio.create_task(refresh_forever(ctx, js, relay, queues, stopping))
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    server = GrpcServer(
        bindings=bindings(
            ctx, users, admin, lambda: loads.waiting_on(queues[1].durable), authenticate
        ),
        address=f"0.0.0.0:{settings.grpc_port}" if settings.grpc_port else settings.jobs_addr,
        grace_seconds=settings.drain_grace_seconds,
        authenticate=authenticate,
        authorize=caller_hook(users, AdminRole.from_settings(settings)),
    )
    try:
        async with server:
            log.info("jobs service listening on port %d", server.port)
            yield RunningJobsService(ctx=ctx, server=server, relay=relay, reconciler=reconciler)
    finally:
        stopping.set()
        metrics_task.cancel()
        await asyncio.wait({metrics_task}, timeout=10)
        await dead_letters.stop()
        await loads.detach()
        reconciler.stop()
        await asyncio.wait({reconcile_task}, timeout=10)
        builder.stop()
        await asyncio.wait({builder_task}, timeout=10)
        settler.stop()
        await asyncio.wait({settler_task}, timeout=10)
        relay.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(relay_task, timeout=10)
        await hub.detach()
        await nc.drain()
        await engine.dispose()
        if read_engine is not None:
            await read_engine.dispose()
        if sync_reads is not None:
            sync_reads.close()


DEFAULT_CLEANUP_HOURS = {"abandoned": 24.0, "ephemeral": 24.0, "orphans": 6.0}


async def run_cleanup(settings: Settings, task: str, *, hours: float | None) -> list[CleanupReport]:
    """Run one clean-up (or all) against the configured database and storage."""
    engine = db.create_engine(settings.database_url)
    try:
        ctx = JobsContext(
            sessions=db.session_factory(engine),
            storage=make_storage(settings),
            settings=settings,
            hub=EventHub(),
        )
        cleanup = Cleanup(ctx)
        reports = []
        for name in ("abandoned", "ephemeral", "orphans") if task == "all" else (task,):
            age = dt.timedelta(hours=hours if hours is not None else DEFAULT_CLEANUP_HOURS[name])
            reports.append(await getattr(cleanup, name)(older_than=age))
        return reports
    finally:
        await engine.dispose()


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    # In Kubernetes a hook Job migrates once; replicas racing to migrate would collide.
    try:
        async with jobs_service(settings, migrate=settings.migrate_on_start, stop=stop):
            settle_heap()
            await stop.wait()
    except streams.StoppedWhileConnecting:
        log.info("the jobs service stopped before NATS answered")
