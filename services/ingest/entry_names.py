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

import functools
import posixpath
import re
import sys
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
    "nfc",
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


# Unicode's Stream-Safe Text Format (UAX #15) allows at most 30 non-starters in a row. NFC
# puts a run of them in canonical order with an insertion sort, quadratic in the run:
# a 64 KiB name of combining marks in reverse order took 1.5 CPU-s to normalise, holding
# the GIL, and each name is normalised once per walk of the directory (25 CPU-s for an
# upload of 2.5 KB, a zip of eight such names zipped; an upload may list 2,000 of them).
MAX_NON_STARTERS = 30


@functools.cache
def _long_runs() -> re.Pattern[str]:
    """A run of more than MAX_NON_STARTERS characters NFC would reorder: those of a
    combining class, and those whose decomposition starts with one (U+0F73, of class 0,
    is two marks once decomposed). Its start must follow no such character, so the search
    is linear. Built once, from the running Python's Unicode tables (~0.2 s)."""
    codes = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.combining(char):
            codes.append(code)
            continue
        decomposed = unicodedata.decomposition(char)
        canonical = bool(decomposed) and not decomposed.startswith("<")
        if canonical and unicodedata.combining(unicodedata.normalize("NFD", char)[0]):
            codes.append(code)
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    marks = "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )
    return re.compile(f"(?<![{marks}])[{marks}]{{{MAX_NON_STARTERS + 1}}}")


def nfc(name: str) -> str:
    """The name in NFC, or as it is when it holds a run of marks too long to put in order
    (safe_entry_path refuses such names; a listing shows them as they are)."""
    if _long_runs().search(name):
        return name
    return unicodedata.normalize("NFC", name)


def safe_entry_path(name: str) -> str:
    """The name as a relative POSIX path in NFC inside the archive's folder; UnsafeName
    when it is absolute, climbs out (..), holds control characters, or more combining
    marks in a row than any text needs."""
    if UNSAFE_IN_NAMES.search(name):
        raise UnsafeName(f"entry {shown(name)} has control characters in its name")
    if _long_runs().search(name):
        raise UnsafeName(
            f"entry {shown(name)} has more than {MAX_NON_STARTERS} combining marks in a row "
            "in its name"
        )
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
