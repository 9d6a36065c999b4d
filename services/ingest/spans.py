"""Checks that span a whole archive, in a few bytes per entry.

An archive of 100,000 entries must not cost 100,000 Python objects: each would be ~100
bytes (a tuple, its ints, a name), and a ZipInfo ~0.5 KiB. What must be known across all
entries is kept in arrays of integers instead: where each entry's bytes start (and, for
records out of file order, end: no two entries may share bytes), and a keyed 4-byte hash
of each entry's name (no two names may be one on a case-insensitive disk). Sorting such an
array through one list of ints would cost ~40 bytes per value again, so arrays are sorted
in runs and merged.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from array import array

# Values sorted at once as a list (~330 KB for 8,192 of them), then merged.
RUN = 1 << 13
MAX_U64 = (1 << 64) - 1


def u64_array() -> array[int]:
    return array("Q")


def u32_array() -> array[int]:
    return array("I")


def clamp(value: int) -> int:
    """Declared offsets and sizes plus a prefix may pass 2**64; beyond is refused anyway."""
    return min(value, MAX_U64)


def sorted_array(values: array[int]) -> array[int]:
    """`values` in ascending order, costing 8 bytes per value plus one run's list. Most
    archives list their entries in file order: their offsets are returned as they are."""
    if all(a <= b for a, b in itertools.pairwise(values)):
        return values
    code = values.typecode
    runs = [array(code, sorted(values[at : at + RUN])) for at in range(0, len(values), RUN)]
    return array(code, heapq.merge(*runs))


def first_overlap(starts: array[int], ends: array[int]) -> int | None:
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


def repeated(hashes: array[int]) -> frozenset[int]:
    """The hashes that occur more than once (the names that may repeat; equal hashes of
    different names are told apart by comparing the names themselves)."""
    ordered = sorted_array(hashes)
    return frozenset(a for a, b in itertools.pairwise(ordered) if a == b)
