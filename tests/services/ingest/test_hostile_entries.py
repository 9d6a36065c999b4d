"""Archive entries whose own compression is hostile, unpacked by the real unpacker: memory
stays bounded by the chunk size whatever one compressed byte inflates to."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from bytereview.core import Settings, make_storage
from bytereview.jobs.v1 import resources_pb2 as pb
from tests.archives import PNG
from tests.services.ingest.test_unpack import unpack_all

MIB = 1024 * 1024


def _single_bomb(method: int, size: int) -> bytes:
    """An archive of one entry of `size` zero bytes compressed with `method`, then a PNG.
    bzip2 makes 128 MiB of zeros ~100 bytes, LZMA ~20 KiB: one read of the compressed
    entry inflates all of it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("zeros.bin"), b"\0" * size, compress_type=method)
        archive.writestr(zipfile.ZipInfo("ok.png"), PNG, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"])
async def test_one_read_of_a_bzip2_or_lzma_entry_inflates_at_most_a_chunk(
    tmp_path: Path, method: int
) -> None:
    """zipfile inflates BZIP2 and LZMA entries without a limit per read (DEFLATE has one):
    the ratio budget saw the bytes only once all were in memory, 128 MiB here from a
    ~100-byte entry, gigabytes from a few KiB."""
    data = _single_bomb(method, 128 * MIB)
    assert len(data) < 64 * 1024
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    tracemalloc.start()
    try:
        outcome, _ = await unpack_all(storage, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "zip bomb" in outcome.error
    assert peak < 24 * MIB, peak


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"])
async def test_bzip2_and_lzma_entries_still_unpack_whole(tmp_path: Path, method: int) -> None:
    body = bytes(range(256)) * (3 * MIB // 256) + b"tail"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("a.bin"), body, compress_type=method)
        archive.writestr(zipfile.ZipInfo("ok.png"), PNG, compress_type=method)
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    outcome, reporter = await unpack_all(storage, out.getvalue())
    assert outcome.error == ""
    entries = {e.path: e for e in reporter.all}
    assert entries["ok.png"].status == pb.SourceFile.READY
    assert entries["a.bin"].size_bytes == len(body)
    with storage.open_read(entries["a.bin"].storage_key) as handle:
        assert handle.read() == body
