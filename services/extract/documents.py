"""Stored task files as extractor `Document`s, for the worker's tasks and the Preview RPC alike."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from bytereview.core import Storage
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from services.extract.base import Document
from services.extract.reading.page_store import StoredReadings


def documents(storage: Storage, files: Iterable[worker_pb.TaskFile]) -> list[Document]:
    """One `Document` per file, each opened lazily from storage when the extractor reads it,
    with what OCR read of it in an earlier task."""
    return [
        Document(
            name=f.name,
            path=f.original_path,
            media_type=f.media_type,
            open=functools.partial(storage.open_read, f.storage_key),
            readings=StoredReadings.of(storage, f.storage_key),
        )
        for f in files
    ]
