"""Fixtures that start the real servers the platform needs."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from bytereview.core import DEV_TOKEN, Settings
from bytereview.jobs.v1 import jobs_service_pb2_grpc, worker_service_pb2_grpc
from services.jobs import RunningJobsService, jobs_service, prepare_database
from tests.identity import AUDIENCE, ISSUER, IdentityProvider, identity_provider
from tests.servers import (
    FakeGcs,
    NatsServer,
    PostgresServer,
    fake_gcs_server,
    nats_server,
    postgres_server,
)

USER = (("authorization", f"Bearer {DEV_TOKEN}"),)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    # A lock cycle is broken after 100 ms, not PostgreSQL's 1 s: the tests that close one
    # on purpose (test_lock_cycles) waited that second each; no cycle, no difference.
    with postgres_server(in_memory=True, deadlock_timeout="100ms") as server:
        yield server


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[FakeGcs]:
    with fake_gcs_server() as server:
        yield server


@pytest.fixture
def nats() -> Iterator[NatsServer]:
    # One server per test: work-queue streams and their subjects start empty every time.
    with nats_server() as server:
        yield server


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated and seeded SQLite file; each test gets a copy (migrating is the slow part)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(prepare_database(Settings(env="dev", database_url=f"sqlite+aiosqlite:///{path}")))
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgresServer) -> str:
    """A migrated and seeded PostgreSQL database, cloned per test with CREATE DATABASE TEMPLATE."""
    url = postgres.create_database("template_bytereview")
    asyncio.run(prepare_database(Settings(env="dev", database_url=url)))
    return "template_bytereview"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database per test, on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "bytereview.db"
        shutil.copyfile(template, target)
        return f"sqlite+aiosqlite:///{target}"
    server: PostgresServer = request.getfixturevalue("postgres")
    pg_template: str = request.getfixturevalue("postgres_template")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}", template=pg_template)


@pytest.fixture(scope="session")
def idp() -> Iterator[IdentityProvider]:
    with identity_provider() as provider:
        yield provider


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_url: str,
    nats: NatsServer,
    idp: IdentityProvider,
) -> Settings:
    marker = request.node.get_closest_marker("settings")
    overrides = marker.kwargs if marker else {}
    # The marker may also change the suite's defaults below (ack_wait_seconds, a test that
    # waits for redeliveries); the servers' addresses are the fixtures' own.
    defaults: dict[str, Any] = {"ack_wait_seconds": 5, "drain_grace_seconds": 5}
    return Settings(
        **{**defaults, **overrides},
        jwt_jwks_url=idp.jwks_url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        env="dev",
        data_dir=tmp_path,
        database_url=database_url,
        nats_url=nats.url,
        jobs_addr="127.0.0.1:0",
        storage_dir=tmp_path / "storage",
        public_url="http://gateway.test",
    )


@pytest.fixture
async def jobs(settings: Settings) -> AsyncIterator[RunningJobsService]:
    async with jobs_service(settings, migrate=False) as service:
        yield service


@pytest.fixture
async def channel(jobs: RunningJobsService) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{jobs.port}") as ch:
        yield ch


@pytest.fixture
def job_stub(channel: grpc.aio.Channel) -> jobs_service_pb2_grpc.JobServiceStub:
    return jobs_service_pb2_grpc.JobServiceStub(channel)


@pytest.fixture
def worker_stub(channel: grpc.aio.Channel) -> worker_service_pb2_grpc.JobWorkerServiceStub:
    return worker_service_pb2_grpc.JobWorkerServiceStub(channel)
