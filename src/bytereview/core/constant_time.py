"""Comparing a secret someone sent with ours, in time that does not depend on where they differ.

`hmac.compare_digest` on text raises TypeError when either side holds a non-ASCII character:
a bearer token or a URL signature of `é` was an INTERNAL error (a 500), not a refusal. Both
sides are compared as UTF-8 bytes instead, which any text encodes to.
"""

from __future__ import annotations

import hmac


def same_secret(given: str, expected: str) -> bool:
    """Whether `given` is `expected`, without leaking how much of it matched."""
    return hmac.compare_digest(given.encode(), expected.encode())
