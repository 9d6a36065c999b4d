"""The IngestService gRPC server: inspect an archive's listing against the limits."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext

from google.api import httpbody_pb2

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
from bytereview.core.caller_slots import CallerSlots
from bytereview.core.head_only import head_only
from bytereview.core.workers import file_for_caller
from bytereview.ingest.v1 import ingest_service_pb2 as ingest_pb
from bytereview.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from bytereview.jobs.v1 import worker_service_pb2_grpc as worker_grpc
from services.ingest import directory, render
from services.ingest.analysis import resolved
from services.ingest.entry_names import MAX_PATH, nfc, shortened
from services.ingest.local_copies import DEFAULT_MAX_BYTES, LocalCopies
from services.ingest.metrics import PAGE_DRAWS
from services.ingest.planning import name_of
from services.ingest.sniff import PDF, SNIFF_BYTES, sniff
from services.ingest.unpack import (
    REFUSED,
    DamagedArchive,
    HostileArchive,
    UnpackLimits,
    is_junk,
    open_archive,
    plan,
)

log = logging.getLogger(__name__)

MAX_PAGE = 1000
# RenderPage calls one user may have in flight (per replica); the web app draws one page at
# a time, and each draw holds one of the process's few threads.
RENDERS_PER_USER = 4
# Listings computed at once per process. One holds up to ~130 MB while it is built (10,000
# entries of 1,024-character names, 4 bytes each in UTF-8, in a 64 MiB directory), and
# each runs on a thread of its own: one caller asking for the listings of a few dozen such
# archives at once took as many threads and more memory than a pod has. Others wait.
LISTINGS_AT_ONCE = 2
# Listings one user may have being built (or waiting to be) at once, per replica. Each
# waits its turn for the LISTINGS_AT_ONCE builders everyone shares: one user asking for a
# dozen archives' listings at once held another user's one-entry listing up for seven
# listings' time (minutes for large archives, past the gateway's upstream timeout). One
# each, fewer than the builders: another user's listing starts at once, whatever one user
# asks for. Pages of a listing already built, and callers joining one being built, hold none
# (but reading an archive not analysed yet to tell what it is holds one).
LISTINGS_PER_USER = 1
# How often the local copies left unused too long are deleted (local_copies.IDLE_SECONDS).
EXPIRY_SECONDS = 60.0
# Offsets into a listing of at most 2 x 10,000 records: a few ASCII digits, nothing else.
_PAGE_TOKEN = re.compile(r"[0-9]{1,9}")


def _sniffed(storage: Storage, key: str, limits: UnpackLimits) -> str:
    """The media type of a file not analysed yet, as analysis will find it; '' if absent."""
    try:
        with storage.open_read(key) as handle:
            head = handle.read(SNIFF_BYTES)
        return resolved(storage, key, sniff(head), limits).media_type
    except FileNotFoundError:
        return ""


def _int64(value: int) -> int:
    """Declared sizes go up to 2**64 - 1 (zip64); the listing's fields are signed."""
    return min(value, 2**63 - 1)


def _int32(value: int) -> int:
    return min(value, 2**31 - 1)


def _refused(storage: Storage, key: str, error: str) -> ingest_pb.InspectArchiveResponse:
    """The stored verdict, with the entry count the archive's end record claims."""
    try:
        with storage.open_read(key) as handle:
            entries = directory.read_end(handle).entries
    except (FileNotFoundError, directory.DirectoryError):
        entries = 0
    return ingest_pb.InspectArchiveResponse(
        entry_count=_int32(entries), problem=error.removeprefix(REFUSED)
    )


def inspect(storage: Storage, key: str, limits: UnpackLimits) -> ingest_pb.InspectArchiveResponse:
    """The archive's entries and what unpacking would make of them (blocking).

    An archive over the entry limit is answered from its directory's end alone, without
    reading a single record: what the worker refused it for, at constant cost."""
    with storage.open_read(key) as handle:
        try:
            archive = open_archive(handle, limits, max_files=limits.max_entries)
        except DamagedArchive as exc:
            raise FailedPrecondition(f"not a readable ZIP archive ({exc})") from exc
        except HostileArchive as exc:
            end = directory.read_end(handle)
            return ingest_pb.InspectArchiveResponse(
                entry_count=_int32(end.entries), problem=str(exc)
            )
        response = ingest_pb.InspectArchiveResponse()
        problems: dict[int, str] = {}
        try:
            for item in plan(archive, limits):
                if item.problem:
                    problems[item.index] = item.problem
        except DamagedArchive as exc:
            raise FailedPrecondition(f"not a readable ZIP archive ({exc})") from exc
        except HostileArchive as exc:
            response.problem = str(exc)
        files = total = 0
        for record in archive.records():
            name = name_of(record)
            problem = problems.get(record.index, "")
            if not problem and not record.is_dir and is_junk(name):
                problem = "skipped: system file"
            files += not record.is_dir
            total += record.uncompressed_size
            response.entries.append(
                ingest_pb.ArchiveListing(
                    index=record.index,
                    path=shortened(nfc(name), MAX_PATH),
                    compressed_size=_int64(record.compressed_size),
                    uncompressed_size=_int64(record.uncompressed_size),
                    is_dir=record.is_dir,
                    encrypted=bool(record.flags & 0x1),
                    problem=problem,
                )
            )
        response.entry_count = files
        response.total_uncompressed_size = _int64(total)
    return response


class ListingCache:
    """Recent listings, so that paging through an archive reads it once, not once a page;
    one computation per archive however many callers ask at once. Keyed by storage key
    and size, so a replaced object is listed afresh; bounded by the listings' total size."""

    def __init__(
        self, *, storage: Storage, limits: UnpackLimits, max_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self._storage = storage
        self._limits = limits
        self._max_bytes = max_bytes
        self._bytes = 0
        self._done: OrderedDict[tuple[str, int], tuple[ingest_pb.InspectArchiveResponse, int]] = (
            OrderedDict()
        )
        self._running: dict[tuple[str, int], asyncio.Future[ingest_pb.InspectArchiveResponse]] = {}
        self._computing = asyncio.Semaphore(LISTINGS_AT_ONCE)
        self.computed = 0
        # Listings being built now, and the most there ever were at once.
        self.building = self.most_building = 0

    async def get(
        self,
        key: str,
        *,
        admit: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> ingest_pb.InspectArchiveResponse:
        """The listing of `key`. `admit` is entered only when this call has to build it (not
        when it is cached or being built for another call), and held until it is built; it
        may refuse by raising."""
        size = await asyncio.to_thread(self._storage.size, key)
        if size is None:
            raise FailedPrecondition("the archive has not been uploaded")
        cache_key = (key, size)
        if (found := self._done.get(cache_key)) is not None:
            self._done.move_to_end(cache_key)
            return found[0]
        if (running := self._running.get(cache_key)) is not None:
            return await asyncio.shield(running)
        with admit():
            return await self._build(key, cache_key)

    async def _build(
        self, key: str, cache_key: tuple[str, int]
    ) -> ingest_pb.InspectArchiveResponse:
        future: asyncio.Future[ingest_pb.InspectArchiveResponse] = (
            asyncio.get_running_loop().create_future()
        )
        self._running[cache_key] = future
        try:
            async with self._computing:
                self.computed += 1
                self.building += 1
                self.most_building = max(self.most_building, self.building)
                try:
                    listing = await asyncio.to_thread(inspect, self._storage, key, self._limits)
                finally:
                    self.building -= 1
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._running[cache_key]
        future.set_result(listing)
        weight = listing.ByteSize()
        self._done[cache_key] = (listing, weight)
        self._bytes += weight
        while self._bytes > self._max_bytes and len(self._done) > 1:
            _, (_, dropped) = self._done.popitem(last=False)
            self._bytes -= dropped
        return listing


class IngestServicer(ingest_grpc.IngestServiceServicer):
    def __init__(
        self,
        *,
        storage: Storage,
        limits: UnpackLimits,
        jobs: worker_grpc.JobWorkerServiceAsyncStub,
        copies_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._storage = storage
        self._limits = limits
        self._jobs = jobs
        self.listings = ListingCache(storage=storage, limits=limits)
        self.renders = CallerSlots(limit=RENDERS_PER_USER, what="pages being drawn")
        self.listing_builds = CallerSlots(
            limit=LISTINGS_PER_USER,
            what=f"archive listing{'' if LISTINGS_PER_USER == 1 else 's'} being built",
        )
        # Pages are drawn from local copies, kept so that the next page's is not downloaded.
        self.copies = LocalCopies(storage, max_bytes=copies_bytes)

    def close(self) -> None:
        """Delete the local copies (those being drawn once they are done with)."""
        self.copies.close()

    async def InspectArchive(
        self, request: ingest_pb.InspectArchiveRequest, context: Context
    ) -> ingest_pb.InspectArchiveResponse:
        # The caller's credential (checked with the file's owner) comes before any field.
        found = await file_for_caller(self._jobs, request.file, context)
        if not 0 <= request.page_size <= MAX_PAGE:
            raise InvalidArgument(f"page_size must be between 0 and {MAX_PAGE}")
        if request.page_token and not _PAGE_TOKEN.fullmatch(request.page_token):
            raise InvalidArgument("page_token is malformed")
        offset = int(request.page_token or "0")
        media_type = found.file.media_type
        if not media_type:
            # Not analysed yet: what it is comes from its directory, read in full (an Office
            # document is a ZIP too), as costly as a listing; it takes the same slot.
            with self.listing_builds.held(found.caller):
                media_type = await asyncio.to_thread(
                    _sniffed, self._storage, found.file.storage_key, self._limits
                )
        if media_type != "application/zip":
            raise FailedPrecondition(
                f"{request.file} is not a ZIP archive ({media_type or 'not uploaded yet'})"
            )
        if found.file.status == pb.SourceFile.FAILED and found.file.error.startswith(REFUSED):
            # Refused when it was unpacked: the verdict stands, the archive is not read again.
            return await asyncio.to_thread(
                _refused, self._storage, found.file.storage_key, found.file.error
            )
        full = await self.listings.get(
            found.file.storage_key, admit=lambda: self.listing_builds.held(found.caller)
        )
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

    async def RenderPage(
        self, request: ingest_pb.RenderPageRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        # As InspectArchive: the jobs service checks the caller owns the file first.
        found = await file_for_caller(self._jobs, request.file, context)
        page, width = render.check_request(request.page, request.width)
        file = found.file
        if file.status != pb.SourceFile.READY or not render.renderable(file.media_type):
            raise FailedPrecondition(
                f"{request.file} has no page to show: only analysed PDFs and images do"
            )
        if head_only(context):
            # A REST HEAD: the GET's status and the headers known without drawing (a HEAD
            # drew the page, pdfium in a child process, for the gateway to drop it).
            count = await self._page_head(found.caller, file, page)
            await context.send_initial_metadata(_page_headers(count))
            yield httpbody_pb2.HttpBody(content_type=render.PNG_TYPE)
            return
        # Pages are drawn on the process's threads, which every caller shares: one user's
        # burst of draws (a few hundred at once) queued ahead of everyone else's for minutes.
        with self.renders.held(found.caller):
            PAGE_DRAWS.labels("pdf" if file.media_type == PDF else "image").inc()
            if file.media_type == PDF:
                image, count = await asyncio.to_thread(
                    render.draw_pdf_page, self.copies, file.storage_key, page, width
                )
            else:
                image, count = await asyncio.to_thread(
                    render.draw_image, self.copies, file.storage_key, page, width
                )
            drawn = await asyncio.to_thread(render.encode_png, image, count)
        await context.send_initial_metadata(
            [
                ("x-http-x-image-width", str(drawn.width)),
                ("x-http-x-image-height", str(drawn.height)),
                *_page_headers(drawn.page_count),
            ]
        )
        yield httpbody_pb2.HttpBody(content_type=render.PNG_TYPE, data=drawn.png)

    async def _page_head(self, caller: str, file: worker_pb.TaskFile, page: int) -> int:
        """The page count a draw of `page` would tell, and its refusals, without drawing.

        One of the caller's draw slots is held all the same: an image's head reads the file
        on one of the threads draws share, and a HEAD is refused (429) where its GET would."""
        with self.renders.held(caller):
            if file.media_type == PDF:
                return render.pdf_head(file.storage_key, page, file.page_count)
            return await asyncio.to_thread(render.image_head, self.copies, file.storage_key, page)


def _page_headers(page_count: int) -> list[tuple[str, str]]:
    """A drawn page's headers known before it is drawn (all but its pixel size), as x-http-*
    metadata (the gateway makes them response headers); no page count when it is unknown."""
    count = [("x-http-x-page-count", str(page_count))] if page_count else []
    return [*count, ("x-http-cache-control", "private, max-age=300")]


@asynccontextmanager
async def _expiring(copies: LocalCopies) -> AsyncIterator[None]:
    """Deletes the copies left unused too long, every minute while the service runs."""

    async def expire() -> None:
        while True:
            await asyncio.sleep(EXPIRY_SECONDS)
            try:
                await asyncio.to_thread(copies.expire)
            except Exception:  # a file the disk would not delete: tried again next time
                log.exception("deleting local copies left unused failed")

    task = asyncio.create_task(expire())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


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
    servicer = IngestServicer(
        storage=storage, limits=limits, jobs=jobs, copies_bytes=settings.render_copies_bytes
    )
    try:
        server = GrpcServer(
            bindings=[
                ServiceBinding(
                    servicer,
                    ingest_grpc.add_IngestServiceServicer_to_server,
                    service_name(ingest_pb, "IngestService"),
                )
            ],
            address=f"0.0.0.0:{settings.grpc_port}" if settings.grpc_port else settings.ingest_addr,
            grace_seconds=settings.drain_grace_seconds,
        )
        async with server, _expiring(servicer.copies):
            if listening is not None:
                listening(server.port)
            yield server
    finally:
        # After the server's drain: no copy outlives the service on disk.
        servicer.close()
