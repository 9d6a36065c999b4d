"""Documents that are ZIP packages, known by their central directory wherever their parts sit.

sniff.py knows an Office document by its first local header only: `[Content_Types].xml`
first, as Microsoft Office writes it. Other producers (libraries, exporters, anything
re-zipped) put it anywhere, and such a file was unpacked as an archive of its XML parts and
pictures. The directory names every part, so it is read here instead, with the same bounds
as unpacking (services/ingest/planning.py open_archive): names only, never entries' data.
"""

from __future__ import annotations

from typing import BinaryIO

from services.ingest import directory
from services.ingest.budget import UnpackLimits, UploadBudget
from services.ingest.sniff import OFFICE

# Office Open XML (ECMA-376 Part 2): the package's content types at its root, and the folder
# of the main part Word, Excel and PowerPoint write. Both: a plain archive may hold a file of
# that name (in a subfolder, or beside a folder of its own).
_CONTENT_TYPES = b"[content_types].xml"
_MAIN_FOLDERS = (b"word/", b"xl/", b"ppt/")


def document_type(
    handle: BinaryIO, limits: UnpackLimits, budget: UploadBudget | None = None
) -> str:
    """The document type of a seekable ZIP by its directory ('' for an archive of files).

    A directory that unpacking would refuse (over the record limit or too large, damaged)
    is no document here either: the unpacker then says what is wrong with it. With an
    upload's `budget` (an archive inside an upload), no more records are read than it has
    left, and a document's are charged to it: a document is never unpacked, so this is the
    only time its directory is read (it may list 20,000 records, its parts last). An
    archive's are charged when unpacking counts them (planning.open_archive)."""
    try:
        end = directory.read_end(handle)
    except directory.DirectoryError:
        return ""
    if end.entries > limits.max_records or end.size > limits.max_directory_bytes:
        return ""
    max_records = limits.max_records
    if budget is not None:
        if end.size > budget.directory_bytes_left or (end.size and not budget.records_left):
            return ""
        max_records = min(max_records, budget.records_left)
    content_types = main_part = False
    try:
        for count, record in enumerate(directory.walk(handle, end), start=1):
            # The end record's count may understate the records (16-bit counters wrap).
            if count > max_records:
                return ""
            name = _part_name(record.raw_name)
            content_types = content_types or name == _CONTENT_TYPES
            main_part = main_part or name.startswith(_MAIN_FOLDERS)
            if content_types and main_part:
                if budget is not None:
                    budget.read_directory(count, end.size)
                return OFFICE
    except directory.DirectoryError:
        return ""
    return ""


def _part_name(raw: bytes) -> bytes:
    """The name as unpacking would place it (services/ingest/entry_names.py: backslashes are
    separators, `./` is the root) and as a package names it (part names are ASCII and
    compared case-insensitively), without decoding: the names wanted are ASCII in any
    encoding an archive may use."""
    name = raw.replace(b"\\", b"/").lower()
    while name.startswith(b"./"):
        name = name[2:]
    return name
