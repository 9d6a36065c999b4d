"""Checks that span a whole archive, in a few bytes per entry.

An archive of 100,000 entries must not cost 100,000 Python objects: each would be ~100
bytes (a tuple, its ints, a name), and a ZipInfo ~0.5 KiB. What must be known across all
entries is kept in arrays of integers instead: a keyed 4-byte hash of each entry's name
(no two names may be one on a case-insensitive disk) and, for records out of file order,
where each entry's bytes start and end (no two entries may share bytes). Sorting through
one list of ints would cost ~40 bytes per value again, so values are sorted in runs and
merged as they are read.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from array import array
from collections.abc import Iterable, Iterator

# Values sorted at once as a list (~330 KB for 8,192 of them), then merged.
RUN = 1 << 13
MAX_U64 = (1 << 64) - 1


def clamp(value: int) -> int:
    """Declared offsets and sizes plus a prefix may pass 2**64; beyond is refused anyway."""
    return min(value, MAX_U64)


class SortedRuns:
    """Integers collected for sorting: each run of RUN values is sorted as it fills, and
    iterating merges the runs. The values cost their width (4 or 8 bytes each) plus one
    run's list, and the sorted sequence is streamed, never copied whole."""

    def __init__(self, typecode: str) -> None:
        self._code = typecode
        self._runs: list[array[int]] = []
        self._open: array[int] = array(typecode)

    def append(self, value: int) -> None:
        self._open.append(value)
        if len(self._open) >= RUN:
            self._close()

    def _close(self) -> None:
        if self._open:
            self._runs.append(array(self._code, sorted(self._open)))
            self._open = array(self._code)

    def __iter__(self) -> Iterator[int]:
        self._close()
        return heapq.merge(*self._runs)


def first_overlap(starts: Iterable[int], ends: Iterable[int]) -> int | None:
    """An offset inside two spans, or None if no two spans [start, end) share a byte.

    `starts` and `ends` are each sorted on their own (spans need not be kept as pairs):
    disjoint spans sorted by start have their ends in the same order, so the spans are
    disjoint exactly when every i-th end is at most the (i+1)-th start. Where that fails,
    at least i + 2 spans start at or before starts[i + 1] and at most i end by it: two hold it.
    """
    for end, next_start in zip(ends, itertools.islice(starts, 1, None), strict=False):
        if end > next_start:
            return next_start
    return None


def name_hash(key: str, salt: bytes) -> int:
    """4 bytes standing for a name; keyed per archive, so no archive can be built to collide.
    Chance collisions (one or two in 100,000 names) only cost a comparison of names."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=4, key=salt)
    return int.from_bytes(digest.digest(), "little")


def wide_hash(key: str, salt: bytes) -> int:
    """8 bytes standing for a name where names themselves are not kept (folders): keyed like
    name_hash, so a false match needs ~2**32 names."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8, key=salt)
    return int.from_bytes(digest.digest(), "little")


def repeated(hashes: Iterable[int]) -> frozenset[int]:
    """The hashes that occur more than once in sorted `hashes` (the names that may repeat;
    equal hashes of different names are told apart by comparing the names themselves)."""
    return frozenset(a for a, b in itertools.pairwise(hashes) if a == b)
