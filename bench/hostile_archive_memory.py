"""Peak memory while refusing an archive of 1,000,000 entries (target: < 200 MiB).

    .venv/bin/python bench/hostile_archive_memory.py            # 1,000,000 entries
    .venv/bin/python bench/hostile_archive_memory.py --entries 200000 --compare

Writes the archive (empty stored files, zip64 end records: ~80 MB) to a temporary directory,
then measures, each in a fresh process (its own peak RSS from wait4):
- the worker's path: ArchiveUnpacker.run on local storage, as the ingest worker runs it;
- the same archive with an end record that understates the count (the directory is walked);
- InspectArchive's listing function;
- with --compare, plain zipfile.ZipFile on the archive (what the worker did before).
Prints the figures and exits non-zero if a measured path peaks at 200 MiB or more.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script from anywhere: the repository root, for the benches' shared helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.zip_records import write_stored_archive

MIB = 1024 * 1024
TARGET_MIB = 200
ROOT = Path(__file__).resolve().parent.parent


def write_archive(path: Path, entries: int, *, understate: bool = False) -> None:
    """`entries` empty stored files; `understate`: the end records claim 3."""
    claimed = 3 if understate else None
    write_stored_archive(path, entries, lambda i: f"d{i // 1000:04d}/{i:07d}.png", claimed=claimed)


WORKER = """
import asyncio, sys
from pathlib import Path
sys.path[:0] = [{root!r}, {root!r} + "/src"]
from bytereview.core.settings import Settings
from bytereview.core.storage import make_storage
from services.ingest.unpack import ArchiveUnpacker, Registered, UnpackLimits

class Reporter:
    async def entries(self, archive, batch):
        return Registered(files=[f"jobs/b/files/{{e.index}}" for e in batch])
    async def unpacked(self, file, entry, outcome):
        pass

storage = make_storage(Settings(env="dev", storage_dir=Path({store!r}), data_dir=Path({store!r})))
unpacker = ArchiveUnpacker(storage=storage, limits=UnpackLimits(), archive_key={key!r},
                           target_prefix="jobs/b/entries/a/", archive_name="jobs/b/files/a")
outcome = asyncio.run(unpacker.run(Reporter()))
print(outcome.error)
"""

INSPECT = """
import sys
from pathlib import Path
sys.path[:0] = [{root!r}, {root!r} + "/src"]
from bytereview.core.settings import Settings
from bytereview.core.storage import make_storage
from services.ingest.server import inspect
from services.ingest.unpack import UnpackLimits

storage = make_storage(Settings(env="dev", storage_dir=Path({store!r}), data_dir=Path({store!r})))
print(inspect(storage, {key!r}, UnpackLimits()).problem)
"""

ZIPFILE = """
import zipfile
print(len(zipfile.ZipFile({path!r}).infolist()), "ZipInfos")
"""


def peak(code: str) -> tuple[float, float, str]:
    """(peak RSS in MiB, seconds, what it printed) of a fresh process running `code`."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    output = child.stdout.read().strip()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the measured process failed: {output}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started, output


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--compare", action="store_true", help="also measure plain zipfile")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="br-hostile-") as tmp:
        store = Path(tmp)
        uploads = store / "jobs" / "b" / "uploads"
        uploads.mkdir(parents=True)
        write_archive(uploads / "honest", args.entries)
        write_archive(uploads / "understated", args.entries, understate=True)
        size = (uploads / "honest").stat().st_size
        print(f"archive: {args.entries:,} entries, {size / MIB:.0f} MiB, zip64 end records")
        rows = [
            (
                "worker refuses (count from the end record)",
                WORKER.format(root=str(ROOT), store=tmp, key="jobs/b/uploads/honest"),
            ),
            (
                "worker refuses (end record understates)",
                WORKER.format(root=str(ROOT), store=tmp, key="jobs/b/uploads/understated"),
            ),
            (
                "InspectArchive listing",
                INSPECT.format(root=str(ROOT), store=tmp, key="jobs/b/uploads/honest"),
            ),
        ]
        if args.compare:
            rows.append(
                ("plain zipfile.ZipFile (before)", ZIPFILE.format(path=str(uploads / "honest")))
            )
        print(f"{'path':<46} {'peak RSS MiB':>12} {'seconds':>8}  verdict")
        failed = False
        for label, code in rows:
            rss, seconds, said = peak(code)
            print(f"{label:<46} {rss:>12.0f} {seconds:>8.2f}  {said[:70]}")
            if "before" not in label and rss >= TARGET_MIB:
                failed = True
        if failed:
            raise SystemExit(f"a refusal peaked at {TARGET_MIB} MiB or more")


if __name__ == "__main__":
    main()
