"""`Content-Disposition: attachment` for a user-chosen file name (RFC 6266, RFC 5987).

Job names are user data: any Unicode, quotes, CR/LF. The header carries them as
`filename*=UTF-8''<percent-encoded>` and adds a plain `filename="..."` fallback of safe ASCII
for old clients, so the value is always printable ASCII: it can travel as gRPC metadata and
no character of the name can end the parameter or the header.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

# What the ASCII fallback keeps; everything else becomes `_`.
_UNSAFE_FALLBACK = re.compile(r"[^A-Za-z0-9._ ()\-]")
MAX_NAME_CHARS = 120


def attachment(filename: str, *, default: str = "download") -> str:
    """The header value that offers `filename` for download, whatever characters it holds."""
    # Control characters (CR, LF, NUL...) have no place in a file name.
    name = "".join(c for c in filename if unicodedata.category(c)[0] != "C").strip()
    name = name.replace("/", "_").replace("\\", "_")[:MAX_NAME_CHARS] or default
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = _UNSAFE_FALLBACK.sub("_", ascii_name).strip() or default
    if "." in name and "." not in fallback:
        fallback += "." + name.rsplit(".", 1)[1]
    encoded = quote(name, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
