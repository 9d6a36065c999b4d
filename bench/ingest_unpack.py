"""Ingest benchmark: unpack throughput beside `unzip -q`, and the worker's peak memory.

    .venv/bin/python bench/ingest_unpack.py            # 1 GiB archives; RSS at 1 and 4 GiB
    .venv/bin/python bench/ingest_unpack.py --quick    # 256 MiB archives; RSS at 256 MiB and 1 GiB
    .venv/bin/python bench/ingest_unpack.py --entries 10000,100000,300000
                                                       # RSS by entry count (tiny PNGs)
    .venv/bin/python bench/ingest_unpack.py --entries 10000,100000 --code DIR
                                                       # the same, with another checkout's code

Prints figures; asserts nothing (targets: >= 0.7x unzip's MB/s, peak RSS < 200 MiB and flat,
in archive size and in entry count). Archives are written to a temporary directory with
incompressible data (ZIP_STORED), so the figures measure I/O and bookkeeping, not zlib.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

# Run as a script from anywhere: the repository root, for the benches' shared helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.zip_records import write_stored_archive
from bytereview.jobs.v1.worker_service_pb2 import ArchiveEntry
from services.ingest.unpack import Outcome, Registered

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent


def make_archive(path: Path, *, files: int, file_size: int) -> int:
    block = os.urandom(min(file_size, 4 * MIB))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for i in range(files):
            with archive.open(f"folder{i % 20}/file{i:06d}.bin", "w", force_zip64=True) as entry:
                left = file_size
                while left > 0:
                    chunk = block[: min(left, len(block))]
                    entry.write(chunk)
                    left -= len(chunk)
    return files * file_size


# A valid 1x1 PNG: what a job of scanned receipts holds, at its smallest.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def make_png_archive(path: Path, *, entries: int) -> None:
    """`entries` stored 1x1 PNGs in folders of 1,000, with zip64 end records."""
    write_stored_archive(path, entries, lambda i: f"scans/{i // 1000:04d}/{i:07d}.png", PNG)


class _NamingReporter:
    """Registers nothing: names every entry, as the jobs service would."""

    async def entries(self, archive: str, batch: Sequence[ArchiveEntry]) -> Registered:
        return Registered(files=[f"jobs/bench/files/{e.index}" for e in batch])

    async def unpacked(self, file: str, entry: ArchiveEntry, outcome: Outcome) -> None:
        return None


def unpack_in_process(archive: Path, target: Path) -> float:
    """Unpack with the production ArchiveUnpacker into local storage; returns seconds."""
    from bytereview.core.settings import Settings
    from bytereview.core.storage import make_storage
    from services.ingest import ArchiveUnpacker, UnpackLimits

    storage = make_storage(Settings(env="dev", storage_dir=target, data_dir=target))
    key = "jobs/bench/uploads/archive"
    (target / "jobs/bench/uploads").mkdir(parents=True, exist_ok=True)
    os.link(
        archive, target / key
    ) if archive.stat().st_dev == target.stat().st_dev else shutil.copy(archive, target / key)
    limits = UnpackLimits(
        max_entries=1_000_000, max_total_bytes=64 * 1024**3, max_entry_bytes=16 * 1024**3
    )
    unpacker = ArchiveUnpacker(
        storage=storage, limits=limits, archive_key=key, target_prefix="jobs/bench/entries/a/"
    )

    started = time.perf_counter()
    outcome = asyncio.run(unpacker.run(_NamingReporter()))
    elapsed = time.perf_counter() - started
    if outcome.error:
        raise SystemExit(outcome.error)
    return elapsed


def unzip_seconds(archive: Path, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["unzip", "-q", "-o", str(archive), "-d", str(target)], check=True)
    return time.perf_counter() - started


def child_peak_rss(archive: Path, target: Path, code_root: Path = ROOT) -> float:
    """Peak RSS (MiB) of a fresh process that unpacks `archive` (the worker's code path),
    with the services of `code_root` (this checkout, or another one to compare with)."""
    code = (
        f"import sys; sys.path[:0] = [{str(code_root)!r}, {str(ROOT)!r}]; "
        "from pathlib import Path; from bench.ingest_unpack import unpack_in_process; "
        f"unpack_in_process(Path({str(archive)!r}), Path({str(target)!r}))"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"unpack failed with {child.returncode}")
    return usage.ru_maxrss / 1024  # this child's own peak, in MiB


def by_entries(counts: list[int], code_root: Path) -> None:
    """Peak RSS and time of unpacking archives of `counts` tiny PNGs, one process each."""
    print(f"code: {code_root}")
    print(f"{'entries':>9} {'archive MiB':>12} {'peak RSS MiB':>13} {'seconds':>8}")
    with tempfile.TemporaryDirectory(prefix="br-bench-") as tmp:
        root = Path(tmp)
        for count in counts:
            archive = root / f"{count}.zip"
            make_png_archive(archive, entries=count)
            started = time.perf_counter()
            peak = child_peak_rss(archive, root / f"out-{count}", code_root)
            seconds = time.perf_counter() - started
            size = archive.stat().st_size / MIB
            print(f"{count:>9,} {size:>12.1f} {peak:>13.0f} {seconds:>8.1f}", flush=True)
            shutil.rmtree(root / f"out-{count}")
            archive.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--entries", help="comma-separated entry counts: peak RSS by entry count only"
    )
    parser.add_argument(
        "--code", type=Path, default=ROOT, help="checkout whose services unpack (--entries)"
    )
    args = parser.parse_args()
    if args.entries:
        by_entries([int(n) for n in args.entries.split(",")], args.code.resolve())
        return
    size = 256 * MIB if args.quick else 1024 * MIB
    rss_sizes = (256 * MIB, 1024 * MIB) if args.quick else (1024 * MIB, 4096 * MIB)
    with tempfile.TemporaryDirectory(prefix="br-bench-") as tmp:
        root = Path(tmp)
        print(f"{'archive':<34} {'MB':>7} {'ours MB/s':>10} {'unzip MB/s':>11} {'ratio':>6}")
        for label, files in (("10,000 small files", 10_000), ("100 large files", 100)):
            archive = root / f"{files}.zip"
            total = make_archive(archive, files=files, file_size=size // files)
            ours = unpack_in_process(archive, root / f"ours-{files}")
            shutil.rmtree(root / f"ours-{files}")
            theirs = unzip_seconds(archive, root / f"unzip-{files}")
            shutil.rmtree(root / f"unzip-{files}")
            mb = total / 1e6
            print(
                f"{label:<34} {mb:>7.0f} {mb / ours:>10.1f} {mb / theirs:>11.1f} {theirs / ours:>6.2f}x"
            )
            archive.unlink()
        print()
        print(f"{'archive (100 files)':<34} {'peak RSS MiB':>12}")
        for total in rss_sizes:
            archive = root / f"rss-{total}.zip"
            make_archive(archive, files=100, file_size=total // 100)
            peak = child_peak_rss(archive, root / f"rss-{total}")
            shutil.rmtree(root / f"rss-{total}")
            archive.unlink()
            print(f"{f'{total // MIB} MiB':<34} {peak:>12.0f}")


if __name__ == "__main__":
    main()
