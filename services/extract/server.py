"""The ExtractService gRPC server: synchronous preview of one file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import grpc

from bytereview.core import (
    Context,
    GrpcServer,
    InvalidArgument,
    ServiceBinding,
    Settings,
    Storage,
    service_name,
)
from bytereview.core.caller_slots import CallerSlots
from bytereview.core.fields import check_fields, field_spec
from bytereview.core.workers import file_for_caller
from bytereview.extract.v1 import extract_service_pb2 as extract_pb
from bytereview.extract.v1 import extract_service_pb2_grpc as extract_grpc
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.extract.base import ExtractionError, ExtractionRequest, Extractor
from services.extract.checking import checked
from services.extract.documents import documents
from services.extract.model.ratecontrol import RateController
from services.extract.schema import DEFAULT_TYPES, Field

# A person waits for a preview: give up on an exhausted quota sooner than a queued task does.
PREVIEW_MAX_RATE_WAIT_SECONDS = 20.0
# Previews one user may have in flight (per replica). Each is a model call that shares the
# replica's concurrent calls and the per-minute quota with every tenant's tasks: unbounded,
# one user's burst of previews took all of them (RenderPage and InspectArchive are bounded
# per user alike). The web app asks for one preview at a time.
PREVIEWS_PER_USER = 2


class ExtractServicer(extract_grpc.ExtractServiceServicer):
    def __init__(
        self,
        *,
        storage: Storage,
        extractor: Extractor,
        jobs: worker_grpc.JobWorkerServiceAsyncStub,
        rate: RateController,
    ) -> None:
        self._storage = storage
        self._extractor = extractor
        self._jobs = jobs
        self._rate = rate
        self.previews = CallerSlots(limit=PREVIEWS_PER_USER, what="previews")

    async def PreviewExtraction(
        self, request: extract_pb.PreviewExtractionRequest, context: Context
    ) -> extract_pb.PreviewExtractionResponse:
        # The caller first (the jobs service checks the credential and that the file is
        # theirs): a caller without a credential learns nothing, not even the field rules.
        found = await file_for_caller(self._jobs, request.file, context)
        # The rule ConfigureJob applies, against the shared data-type table.
        specs = check_fields(
            (field_spec(f.name, f.data_type, f.instruction) for f in request.fields),
            DEFAULT_TYPES,
        )
        if not found.file.media_type:
            raise InvalidArgument(f"{request.file} has not been analysed yet")
        fields = [Field(f.name, f.data_type, f.instruction) for f in specs]
        wanted = ExtractionRequest(
            fields=fields, types=DEFAULT_TYPES, documents=documents(self._storage, [found.file])
        )
        try:
            with self.previews.held(found.caller):
                extraction = await self._rate.call(
                    lambda: self._extractor.extract(wanted),
                    max_wait=PREVIEW_MAX_RATE_WAIT_SECONDS,
                )
        except ExtractionError as exc:
            if exc.rate_limited:
                code = grpc.StatusCode.RESOURCE_EXHAUSTED
            elif exc.retryable:
                code = grpc.StatusCode.UNAVAILABLE
            else:
                code = grpc.StatusCode.FAILED_PRECONDITION
            await context.abort(code, str(exc))
        result = await checked(extraction, fields, wanted.documents)  # as a task's answer is
        return extract_pb.PreviewExtractionResponse(
            assessments=result.assessments,
            values=result.struct(),
            extractor=self._extractor.name,
            input_tokens=extraction.input_tokens,
            output_tokens=extraction.output_tokens,
        )


@asynccontextmanager
async def extract_server(
    settings: Settings,
    *,
    storage: Storage,
    extractor: Extractor,
    jobs: worker_grpc.JobWorkerServiceAsyncStub,
    rate: RateController,
    listening: Callable[[int], None] | None = None,
) -> AsyncIterator[GrpcServer]:
    """The service on its address; `listening` hears the port bound (an address may ask for 0)."""
    server = GrpcServer(
        bindings=[
            ServiceBinding(
                ExtractServicer(storage=storage, extractor=extractor, jobs=jobs, rate=rate),
                extract_grpc.add_ExtractServiceServicer_to_server,
                service_name(extract_pb, "ExtractService"),
            )
        ],
        address=f"0.0.0.0:{settings.grpc_port}" if settings.grpc_port else settings.extract_addr,
        grace_seconds=settings.drain_grace_seconds,
    )
    async with server:
        if listening is not None:
            listening(server.port)
        yield server
