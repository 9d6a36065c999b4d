"""The IngestService gRPC server: inspect an archive's listing against the limits."""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from bytereview.core import (
    Context,
    FailedPrecondition,
    GrpcServer,
    InvalidArgument,
    ServiceBinding,
    Settings,
    Storage,
    service_name,
)
from bytereview.core.workers import file_for_caller
from bytereview.ingest.v1 import ingest_service_pb2 as ingest_pb
from bytereview.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.ingest.sniff import SNIFF_BYTES, sniff
from services.ingest.unpack import HostileArchive, UnpackLimits, is_junk, plan

MAX_PAGE = 1000


def _sniffed(storage: Storage, key: str) -> str:
    """The media type of a file not analysed yet, from its first bytes; '' if absent."""
    try:
        with storage.open_read(key) as handle:
            return sniff(handle.read(SNIFF_BYTES)).media_type
    except FileNotFoundError:
        return ""


def inspect(storage: Storage, key: str, limits: UnpackLimits) -> ingest_pb.InspectArchiveResponse:
    """The archive's entries and what unpacking would make of them (blocking)."""
    with storage.open_read(key) as handle:
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise FailedPrecondition(f"not a readable ZIP archive ({exc})") from exc
        with archive:
            infos = archive.infolist()
            response = ingest_pb.InspectArchiveResponse(
                entry_count=sum(1 for i in infos if not i.is_dir()),
                total_uncompressed_size=sum(i.file_size for i in infos),
            )
            problems: dict[int, str] = {}
            try:
                for item in plan(archive, limits):
                    if item.problem:
                        problems[item.index] = item.problem
            except HostileArchive as exc:
                response.problem = str(exc)
            for index, info in enumerate(infos):
                problem = problems.get(index, "")
                if not problem and not info.is_dir() and is_junk(info.filename):
                    problem = "skipped: system file"
                response.entries.append(
                    ingest_pb.ArchiveListing(
                        index=index,
                        path=info.filename,
                        compressed_size=info.compress_size,
                        uncompressed_size=info.file_size,
                        is_dir=info.is_dir(),
                        encrypted=bool(info.flag_bits & 0x1),
                        problem=problem,
                    )
                )
    return response


class IngestServicer(ingest_grpc.IngestServiceServicer):
    def __init__(
        self,
        *,
        storage: Storage,
        limits: UnpackLimits,
        jobs: worker_grpc.JobWorkerServiceAsyncStub,
    ) -> None:
        self._storage = storage
        self._limits = limits
        self._jobs = jobs

    async def InspectArchive(
        self, request: ingest_pb.InspectArchiveRequest, context: Context
    ) -> ingest_pb.InspectArchiveResponse:
        if not 0 <= request.page_size <= MAX_PAGE:
            raise InvalidArgument(f"page_size must be between 0 and {MAX_PAGE}")
        offset = int(request.page_token) if request.page_token.isdigit() else 0
        if request.page_token and not request.page_token.isdigit():
            raise InvalidArgument("page_token is malformed")
        found = await file_for_caller(self._jobs, request.file, context)
        media_type = found.file.media_type or await asyncio.to_thread(
            _sniffed, self._storage, found.file.storage_key
        )
        if media_type != "application/zip":
            raise FailedPrecondition(
                f"{request.file} is not a ZIP archive ({media_type or 'not uploaded yet'})"
            )
        full = await asyncio.to_thread(inspect, self._storage, found.file.storage_key, self._limits)
        size = request.page_size or 100
        page = full.entries[offset : offset + size]
        response = ingest_pb.InspectArchiveResponse(
            entries=page,
            entry_count=full.entry_count,
            total_uncompressed_size=full.total_uncompressed_size,
            problem=full.problem,
        )
        if offset + size < len(full.entries):
            response.next_page_token = str(offset + size)
        return response


@asynccontextmanager
async def ingest_server(
    settings: Settings,
    *,
    storage: Storage,
    limits: UnpackLimits,
    jobs: worker_grpc.JobWorkerServiceAsyncStub,
    listening: Callable[[int], None] | None = None,
) -> AsyncIterator[GrpcServer]:
    """The service on its address; `listening` hears the port bound (an address may ask for 0)."""
    server = GrpcServer(
        bindings=[
            ServiceBinding(
                IngestServicer(storage=storage, limits=limits, jobs=jobs),
                ingest_grpc.add_IngestServiceServicer_to_server,
                service_name(ingest_pb, "IngestService"),
            )
        ],
        address=f"0.0.0.0:{settings.grpc_port}" if settings.grpc_port else settings.ingest_addr,
        grace_seconds=settings.drain_grace_seconds,
    )
    async with server:
        if listening is not None:
            listening(server.port)
        yield server
