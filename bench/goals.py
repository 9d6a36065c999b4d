"""A benchmark's `--goal` verdict: print what it missed and exit 1, or say it was met (for
`.ci/nightly`; the suite never times)."""

from __future__ import annotations


def verdict(misses: list[str], met: str) -> None:
    for miss in misses:
        print(f"goal missed: {miss}", flush=True)
    if misses:
        raise SystemExit(1)
    print(f"goal met: {met}", flush=True)
