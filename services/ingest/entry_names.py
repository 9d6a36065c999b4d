"""An archive entry's name as its author meant it, and as a safe relative path.

Names without the UTF-8 flag (general purpose bit 11) are CP437 by the ZIP specification,
and `zipfile` decodes them so. Two kinds of real archives break that rule: Info-ZIP on
Linux writes UTF-8 without setting the flag, and Windows Explorer writes the system's code
page, which for Japanese is Shift-JIS (cp932) — whose second bytes include 0x5C, a
backslash in CP437 ("表" is 0x95 0x5C). So, per entry: valid UTF-8 is read as UTF-8; a
CP437 reading that shows a backslash is read as cp932 instead when every 0x5C turns out to
be part of a cp932 character; any backslash left is a path separator (older Windows tools
wrote them so). Only then is the path checked, so a backslash can never smuggle in a
traversal: `a\\..\\b` is `a/../b`, and refused like it.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata

from bytereview.core.limits import MAX_PATH
from bytereview.core.unsafe_text import UNSAFE_IN_NAMES
from services.ingest.budget import HostileArchive

# The jobs service refuses longer paths: an entry over MAX_PATH becomes a failed file of its
# own instead of a refused report.
__all__ = [
    "MAX_PATH",
    "Nameless",
    "UnsafeName",
    "folders_of",
    "record_name",
    "safe_entry_path",
    "same_name_key",
    "shown",
]

UTF8_FLAG = 0x800
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafeName(HostileArchive):
    """The name points outside the archive or cannot be a path: the archive is hostile."""


class Nameless(UnsafeName):
    """Nothing is left of the name once cleaned ("", ".", "a/ "): no path, but nothing
    hostile either. The unpacker fails such an entry alone (planning.py)."""


def record_name(raw: bytes, flags: int) -> str:
    """The entry's full name from its directory record's bytes and flags (NUL and all).
    UnicodeDecodeError when the UTF-8 flag is set on bytes that are not UTF-8."""
    if flags & UTF8_FLAG:
        return raw.decode("utf-8")
    if raw.isascii():
        return raw.decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    name = raw.decode("cp437")
    if b"\\" in raw:
        try:
            japanese = raw.decode("cp932")
        except UnicodeDecodeError:
            return name
        if "\\" not in japanese:
            return japanese
    return name


def safe_entry_path(name: str) -> str:
    """The name as a relative POSIX path in NFC inside the archive's folder; UnsafeName
    when it is absolute, climbs out (..), or holds control characters."""
    if UNSAFE_IN_NAMES.search(name):
        raise UnsafeName(f"entry {shown(name)} has control characters in its name")
    path = name.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        raise UnsafeName(f"entry {shown(name)} has an absolute path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if parts:
        # The jobs service strips whitespace from a path's ends (services/jobs/domain/paths.py):
        # the path is checked and compared as the job will hold it ("a.png " is "a.png").
        parts[-1] = parts[-1].rstrip()
    # Windows drops a name's trailing spaces: ".. " climbs like "..".
    if any(p.rstrip(" ") == ".." for p in parts):
        raise UnsafeName(f"entry {shown(name)} points outside the archive (..)")
    if not parts or parts[-1] in ("", "."):
        raise Nameless(f"entry {shown(name)} has no file name")
    # NFC: macOS writes decomposed names (NFD); both spellings are one name.
    return unicodedata.normalize("NFC", posixpath.join(*parts))


def same_name_key(path: str) -> str:
    """Two entries with equal keys would be one file on a case-insensitive disk that drops a
    name's trailing dots and spaces, as Windows does ("A.png." is "a.png" there)."""
    return "/".join(part.rstrip(" .") for part in path.casefold().split("/"))


# Folders of an entry compared with other entries' files, from the top: deeper ones are not
# (each costs 4 bytes per entry while the archive is checked, and a path may be 500 deep).
MAX_FOLDER_LEVELS = 16


def folders_of(key: str) -> list[str]:
    """The keys of the folders holding the entry of `key` (same_name_key), outermost first,
    at most MAX_FOLDER_LEVELS of them: "a/b/c.png" is in "a" and "a/b"."""
    parts = key.split("/")[:-1][:MAX_FOLDER_LEVELS]
    return ["/".join(parts[: n + 1]) for n in range(len(parts))]


def shortened(path: str, limit: int = 200) -> str:
    """A path short enough to show (and to register) for an entry refused for its length."""
    return path if len(path) <= limit else path[: limit - 1] + "…"


# Characters of a name quoted in a verdict. A name may be 64 KiB, and a verdict is kept to
# MAX_ERROR characters (2,000) by the jobs service: quoted whole, a long name pushed the
# reason itself out of the verdict ("entry 'aaaa…" and nothing more).
SHOWN_CHARS = 120


def shown(name: str) -> str:
    """A name as a verdict quotes it: repr'd (controls visible), at most SHOWN_CHARS long."""
    return repr(shortened(name, SHOWN_CHARS))
