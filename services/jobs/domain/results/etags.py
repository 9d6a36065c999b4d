"""A result's entity tag (AIP-154), and the check that refuses a change made on a stale read.

Two reviewers on one result: the second one's correction, accept or revert, made on what
they read before the first one's correction, would overwrite or mark reviewed a value they
never saw. Each such call may carry the etag read; a result changed since refuses it.
"""

from __future__ import annotations

import re

from bytereview.core.errors import Aborted, InvalidArgument
from services.jobs.store import models

_GIVEN = re.compile(r'"[1-9][0-9]{0,9}"')


def etag(version: int) -> str:
    """A result's etag: its values' version, which every correction, revert and re-run
    raises, quoted as HTTP writes one."""
    return f'"{version}"'


def check_etag(result: models.Result, given: str, *, field: str = "result.etag") -> None:
    """Aborted when `given` (a client's etag; empty: none) is not the result's own: its
    values changed since the client read them. `field` names where the etag was given."""
    if given and not _GIVEN.fullmatch(given):
        raise InvalidArgument(
            f"{field}: {given[:40]!r} is no etag this API gives; send back the one read"
        )
    if given and given != etag(result.version):
        raise Aborted(
            f"{field}: the result changed since it was read (it is at version "
            f"{result.version} now); read it again, then decide"
        )
