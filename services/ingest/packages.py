"""Documents that are ZIP packages, known by their central directory wherever their parts sit.

sniff.py knows a package by its first local header only where the format makes that its
magic number (an uncompressed `mimetype` first: OpenDocument, EPUB). Other producers
(libraries, exporters, anything re-zipped) put the parts anywhere, and Open Packaging
Conventions packages (Office, XPS, Visio, 3MF) have no such header at all: such a file was
unpacked as an archive of its XML parts and pictures. The directory names every part, so it
is read here instead (what the names make of it: package_parts.py), with the same bounds as
unpacking (services/ingest/planning.py open_archive): names only, and of entries' data only
a `mimetype` entry's few bytes, once per directory, when its companion part is listed too.
"""

from __future__ import annotations

import zipfile
import zlib
from typing import BinaryIO

from services.ingest import directory, entry_data, spans
from services.ingest.budget import UnpackLimits, UploadBudget
from services.ingest.directory import DirectoryEnd, Record
from services.ingest.entry_data import EntryRefused
from services.ingest.package_parts import MIMETYPE, PackageParts
from services.ingest.sniff import MIMETYPE_DOCUMENTS

# A `mimetype` entry holds a media type alone (ODF 1.2 Part 3 section 3.3, OCF 3): ~50
# bytes. Larger ones, declared or stored, are not read, and no more than this is inflated.
MIMETYPE_BYTES = 256


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
    parts = PackageParts()
    # The first root `mimetype` entry, and what it names once read (None: not read yet).
    # Read once at most, whatever the directory repeats: a read per record would let a
    # hostile directory of 20,000 `mimetype` records cost 20,000 reads.
    mimetype: Record | None = None
    declared: str | None = None
    count = 0
    found = ""
    try:
        for count, record in enumerate(directory.walk(handle, end), start=1):
            # The end record's count may understate the records (16-bit counters wrap).
            if count > max_records:
                return ""
            name = part_name(record.raw_name)
            parts.see(name)
            if name == MIMETYPE and mimetype is None:
                mimetype = record
            if mimetype is not None and declared is None and parts.companion:
                declared = _declared_type(handle, end, mimetype)
            if declared and parts.confirms(declared):
                found = declared
            if found := found or parts.settled():
                break
        else:
            found = parts.finished()
    except directory.DirectoryError:
        return ""
    if found and budget is not None:
        budget.read_directory(count, end.size)
    return found


def _declared_type(handle: BinaryIO, end: DirectoryEnd, record: Record) -> str:
    """The package type a `mimetype` entry's bytes name ('' for none, or if they cannot be
    read within MIMETYPE_BYTES). Stored or deflated, as packages are written; read through
    the unpacker's own entry reader, its data bounded by the directory's start."""
    small = max(record.compressed_size, record.uncompressed_size) <= MIMETYPE_BYTES
    plain = record.method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
    if not small or not plain or record.flags & 0x1:  # 0x1: encrypted
        return ""
    start = spans.clamp(record.header_offset + end.prefix)
    if start + entry_data.LOCAL_SIZE + len(record.raw_name) + record.compressed_size > end.start:
        # Past the directory's start, where no entry's bytes are (planning.plan refuses it):
        # not sought at all, as a storage reader may fail a seek past the end as an outage.
        return ""
    try:
        with entry_data.open_entry(handle, record, start=start, bound=end.start) as source:
            content = source.read(MIMETYPE_BYTES).strip()
    except (zipfile.BadZipFile, EntryRefused, NotImplementedError, zlib.error, EOFError):
        return ""  # damaged: no type; unpacking says what is wrong with it
    for media_type in MIMETYPE_DOCUMENTS:
        if content.startswith(media_type.encode()):
            return media_type
    return ""


def part_name(raw: bytes) -> bytes:
    """The name as unpacking would place it (services/ingest/entry_names.py: backslashes are
    separators, `./` is the root) and as a package names it (part names are ASCII and
    compared case-insensitively), without decoding: the names wanted are ASCII in any
    encoding an archive may use."""
    name = raw.replace(b"\\", b"/").lower()
    while name.startswith(b"./"):
        name = name[2:]
    return name
