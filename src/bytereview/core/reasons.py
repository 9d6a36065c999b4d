"""An exception's message as a user reads it, in a file's failure reason or an API error.

Parsers put their own objects into what they raise: Pillow's "cannot identify image file
<tempfile.SpooledTemporaryFile object at 0x7fcebd151ea0>" reached the job page as the reason
a receipt failed. The reprs say nothing to a user and show the server's internals.
"""

from __future__ import annotations

import re

# `<tempfile.SpooledTemporaryFile object at 0x7f...>`, `<_io.BufferedReader name=3>`: the
# default and io reprs, with the space before them.
_REPR = re.compile(r"\s*<[\w.]+(?: object at 0x[0-9a-fA-F]+| name=[^<>]{0,200})>")
MAX_REASON = 300


def reason_of(exc: BaseException) -> str:
    """`exc`'s message without object reprs, on one line, at most MAX_REASON characters;
    its type's name when that leaves nothing."""
    text = " ".join(_REPR.sub("", str(exc)).split())
    if len(text) > MAX_REASON:
        text = text[: MAX_REASON - 1] + "…"
    return text or type(exc).__name__
