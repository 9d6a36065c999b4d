"""InspectArchive's listing cache: paging through an archive reads it once."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

from bytereview.core.settings import Settings
from bytereview.core.storage import make_storage
from services.ingest.budget import UnpackLimits
from services.ingest.server import LISTINGS_AT_ONCE, ListingCache, inspect
from tests import archives
from tests import hostile_archives as hostile


async def test_listings_are_computed_once_per_archive(tmp_path: Path) -> None:
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    with storage.open_write("jobs/x/uploads/a") as handle:
        handle.write(archives.zip_bytes({f"{i}.png": archives.PNG for i in range(300)}))
    cache = ListingCache(storage=storage, limits=UnpackLimits())
    pages = await asyncio.gather(*(cache.get("jobs/x/uploads/a") for _ in range(3)))
    assert all(len(p.entries) == 300 for p in pages)
    await cache.get("jobs/x/uploads/a")
    assert cache.computed == 1  # three at once and a fourth later: one read of the archive
    with storage.open_write("jobs/x/uploads/a") as handle:  # replaced: listed afresh
        handle.write(archives.zip_bytes({"only.png": archives.PNG}))
    assert [e.path for e in (await cache.get("jobs/x/uploads/a")).entries] == ["only.png"]
    assert cache.computed == 2


def test_a_listing_holds_whatever_sizes_an_archive_declares(tmp_path: Path) -> None:
    """zip64 sizes go up to 2**64 - 1; the listing's fields are signed 64-bit."""
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    with storage.open_write("jobs/x/uploads/a") as handle:
        handle.write(hostile.zip64_declared_size(2**64 - 1))
    listing = inspect(storage, "jobs/x/uploads/a", UnpackLimits())
    bad, ok = listing.entries
    assert bad.uncompressed_size == 2**63 - 1
    assert "larger than" in bad.problem
    assert listing.total_uncompressed_size == 2**63 - 1
    assert ok.problem == ""


async def test_the_cache_is_bounded_by_the_listings_size(tmp_path: Path) -> None:
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    for name in ("a", "b", "c"):
        with storage.open_write(f"jobs/x/uploads/{name}") as handle:
            handle.write(archives.zip_bytes({f"{i}.png": archives.PNG for i in range(100)}))
    one = inspect(storage, "jobs/x/uploads/a", UnpackLimits()).ByteSize()
    cache = ListingCache(storage=storage, limits=UnpackLimits(), max_bytes=2 * one)
    for name in ("a", "b", "c", "c", "a"):
        await cache.get(f"jobs/x/uploads/{name}")
    assert cache.computed == 4  # "a" was dropped to make room for "c"


async def test_listings_of_many_archives_asked_at_once_are_built_a_few_at_a_time(
    tmp_path: Path,
) -> None:
    """A listing is built in memory, ~130 MB for 10,000 names of 1,024 four-byte characters
    (a 64 MiB directory), each on a thread of its own: as many were built at once as
    callers asked for different archives, a few dozen more than a pod has memory for."""
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for i in range(1000):
            archive.writestr(f"{i}/" + "\U0001f600" * 200 + ".png", b"")
    for name in range(6):
        with storage.open_write(f"jobs/x/uploads/{name}") as handle:
            handle.write(out.getvalue())
    cache = ListingCache(storage=storage, limits=UnpackLimits())
    listings = await asyncio.gather(*(cache.get(f"jobs/x/uploads/{n}") for n in range(6)))
    assert all(len(listing.entries) == 1000 for listing in listings)
    assert cache.computed == 6
    assert cache.most_building == LISTINGS_AT_ONCE
