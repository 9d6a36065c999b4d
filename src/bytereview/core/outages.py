"""Which errors mean "a dependency is down" rather than "this piece of work failed", and
which mean the work's object is gone from storage (it failed, for good).

A database that is restarting, a storage service answering 503, a connection refused: the
work is fine and will succeed once the dependency is back, so it is waited out (workers) or
answered UNAVAILABLE (the jobs service), never counted against a task's attempts (#17).

Classes are matched by qualified name along the MRO, so this module imports none of the
drivers it knows about (asyncpg, sqlite3, requests, google-api-core).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from bytereview.core.spool import SpoolFull

_OUTAGE_CLASSES = frozenset(
    {
        # asyncpg: the connection broke (08xxx), the server is shutting down or starting up
        # (57P0x: "terminating connection due to administrator command", "the database
        # system is starting up"), or it has no connection slot left.
        "asyncpg.exceptions.PostgresConnectionError",
        "asyncpg.exceptions.OperatorInterventionError",
        "asyncpg.exceptions.TooManyConnectionsError",
        # Every pooled database connection stayed busy past the pool's timeout.
        "sqlalchemy.exc.TimeoutError",
        # Object storage over HTTP.
        "requests.exceptions.ConnectionError",
        "requests.exceptions.Timeout",
        "google.api_core.exceptions.ServiceUnavailable",
        "google.api_core.exceptions.InternalServerError",
        "google.api_core.exceptions.BadGateway",
        "google.api_core.exceptions.GatewayTimeout",
        "google.api_core.exceptions.TooManyRequests",
        "google.auth.exceptions.TransportError",
    }
)
# SQLite is a local file: it is "down" only while another writer holds it too long.
_SQLITE_OUTAGE_MESSAGES = ("database is locked", "database table is locked")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _class_names(error: BaseException) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__}


def object_missing(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the object is not in storage: deleted, or
    never uploaded. Local storage raises FileNotFoundError; GCS raises google-api-core's
    NotFound, lazily on the first read. No attempt will find it."""
    return any(
        isinstance(error, FileNotFoundError)
        or "google.api_core.exceptions.NotFound" in _class_names(error)
        for error in _chain(exc)
    )


def is_outage(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says a dependency is unreachable or restarting."""
    for error in _chain(exc):
        # SQLAlchemy marks errors that broke the connection (it will reconnect next time).
        if getattr(error, "connection_invalidated", False):
            return True
        # Refused, reset, aborted, broken pipe; a connect that timed out.
        if isinstance(error, (ConnectionError, TimeoutError)):
            return True
        if isinstance(error, sqlite3.OperationalError) and any(
            text in str(error) for text in _SQLITE_OUTAGE_MESSAGES
        ):
            return True
        if _class_names(error) & _OUTAGE_CLASSES:
            return True
        # The worker's temporary disk, full of other copies (a file that can never fit is
        # that file's failure: core/spool.py).
        if isinstance(error, SpoolFull) and not error.never_fits:
            return True
    return False
