"""The syntax of a media type a client declares for a file (RFC 9110 8.3.1).

A declared type travels back out: it is the `Content-Type` a GCS signed upload URL is signed
for and the header the client must send with the bytes. Anything was taken: a value with a
CR LF in it came back as a header the client could not send, and a long one was cut at
MAX_MEDIA_TYPE characters, so the URL was signed for a type nobody declared. Both are
refused instead (an empty type stays "unknown", application/octet-stream).
"""

from __future__ import annotations

import re

from bytereview.core.errors import InvalidArgument
from bytereview.core.limits import MAX_MEDIA_TYPE

# An RFC 9110 token: a type, a subtype, a parameter name or value.
_NAME_CHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# A quoted parameter value: visible ASCII and spaces, `"` and `\` only escaped.
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
_PARAMETER = rf"{_NAME_CHARS}=(?:{_NAME_CHARS}|{_QUOTED})"
# type "/" subtype *( OWS ";" OWS [ parameter ] ); no obs-text, no surrounding spaces.
MEDIA_TYPE = re.compile(rf"{_NAME_CHARS}/{_NAME_CHARS}(?:[ \t]*;[ \t]*(?:{_PARAMETER})?)*")


def check_media_type(value: str, *, field: str) -> str:
    """`value` when it is empty or a media type of at most MAX_MEDIA_TYPE characters;
    else InvalidArgument naming `field`."""
    if len(value) > MAX_MEDIA_TYPE:
        raise InvalidArgument(f"{field} must be at most {MAX_MEDIA_TYPE} characters")
    if value and not MEDIA_TYPE.fullmatch(value):
        raise InvalidArgument(
            f"{field} {value!r} is not a media type (type/subtype, e.g. application/pdf)"
        )
    return value
