"""Paths of files inside a job, as users declare them and archives hold them."""

from __future__ import annotations

import posixpath

from bytereview.core.errors import InvalidArgument
from bytereview.core.limits import MAX_PATH
from bytereview.core.unsafe_text import UNSAFE_IN_NAMES


def clean_path(raw: str, *, field: str) -> str:
    """A user-declared path as a safe relative POSIX path (folders kept for combined mode)."""
    path = raw.replace("\\", "/").strip()
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise InvalidArgument(f"{field} must not be empty")
    if any(p == ".." for p in parts):
        raise InvalidArgument(f"{field} {raw!r} must not contain '..'")
    if UNSAFE_IN_NAMES.search(path):
        # As in archive entries' names: controls, and the bidi characters that make a name
        # display as another (core/unsafe_text.py).
        raise InvalidArgument(f"{field} {raw!r} contains control characters")
    cleaned = "/".join(parts)
    if len(cleaned) > MAX_PATH:
        raise InvalidArgument(f"{field} is longer than {MAX_PATH} characters")
    return cleaned


def folder_of(path: str) -> str:
    return posixpath.dirname(path)
