"""Files a user declares when creating a job, and the signed targets they upload them to."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bytereview.core.errors import InvalidArgument
from bytereview.core.limits import MAX_FILES_PER_CREATE, MAX_FILES_PER_JOB
from bytereview.core.media_types import check_media_type
from bytereview.core.storage import SignedRequest, Storage
from services.jobs.domain.paths import clean_path
from services.jobs.domain.status import FileStatus
from services.jobs.store import models


@dataclass(frozen=True, slots=True)
class DeclaredFile:
    path: str
    size_bytes: int
    content_type: str = ""


@dataclass(frozen=True, slots=True)
class UploadTarget:
    file_id: str
    path: str
    request: SignedRequest


def checked_files(
    files: Sequence[DeclaredFile], *, max_bytes: int, max_files: int = MAX_FILES_PER_JOB
) -> list[tuple[str, DeclaredFile]]:
    """(clean path, file) for each declared file, or InvalidArgument for the first bad one."""
    if not files:
        raise InvalidArgument("files must declare at least one file to upload")
    limit = min(max_files, MAX_FILES_PER_CREATE)
    if len(files) > limit:
        raise InvalidArgument(f"at most {limit} files per job; got {len(files)}")
    cleaned: list[tuple[str, DeclaredFile]] = []
    seen: set[str] = set()
    for i, declared in enumerate(files):
        path = clean_path(declared.path, field=f"files[{i}].path")
        if path in seen:
            raise InvalidArgument(f"files[{i}].path {path!r} is declared twice")
        seen.add(path)
        if declared.size_bytes < 0:
            raise InvalidArgument(f"files[{i}].size_bytes: {path!r} is said to be negative")
        if declared.size_bytes == 0:
            # Named by its path: "files[3]" told a person with 40 files dropped nothing.
            raise InvalidArgument(
                f"files[{i}].size_bytes: {path!r} is empty (0 bytes); leave it out"
            )
        if declared.size_bytes > max_bytes:
            raise InvalidArgument(
                f"files[{i}].size_bytes: {path!r} is {declared.size_bytes} bytes; "
                f"the limit is {max_bytes} bytes"
            )
        check_media_type(declared.content_type, field=f"files[{i}].content_type")
        cleaned.append((path, declared))
    return cleaned


def same_files(
    cleaned: Sequence[tuple[str, DeclaredFile]], declared: Sequence[models.SourceFile]
) -> bool:
    """Whether `cleaned` (checked_files' answer) declares the files a job was created with:
    the same paths, sizes and types."""
    asked = {(path, f.size_bytes, f.content_type) for path, f in cleaned}
    made = {(f.original_path, f.declared_size, f.declared_type) for f in declared}
    return asked == made


async def upload_targets(
    storage: Storage, files: Sequence[models.SourceFile]
) -> list[UploadTarget]:
    """A signed upload request for each file still waiting for its bytes."""
    waiting = [f for f in files if f.status == FileStatus.PENDING_UPLOAD]

    def sign(f: models.SourceFile) -> SignedRequest:
        return storage.signed_upload(
            f.storage_key,
            content_type=f.declared_type or "application/octet-stream",
            max_bytes=f.declared_size,
        )

    def sign_all() -> list[SignedRequest]:
        # One thread hop for the lot (a hop per file cost more than signing 10,000 of
        # them); a small pool, since a GCS backend may sign over the network (IAM).
        with ThreadPoolExecutor(max_workers=16, thread_name_prefix="sign") as pool:
            return list(pool.map(sign, waiting))

    requests = await asyncio.to_thread(sign_all)
    return [
        UploadTarget(f.id, f.original_path, request)
        for f, request in zip(waiting, requests, strict=True)
    ]
