"""Which errors are a dependency being down (waited out) rather than a failure of the work."""

from __future__ import annotations

import sqlite3

import asyncpg  # type: ignore[import-untyped]  # no stubs
import pytest
import requests
from google.api_core import exceptions as google_exceptions
from sqlalchemy import exc as sa_exc

from bytereview.core.outages import is_outage


def wrapped(error: BaseException, *, invalidated: bool = False) -> sa_exc.DBAPIError:
    """As SQLAlchemy raises a driver error: wrapped, the driver's error as the cause."""
    try:
        try:
            raise error
        except BaseException as cause:
            raise sa_exc.DBAPIError.instance(
                "SELECT 1", None, cause, Exception, connection_invalidated=invalidated
            ) from cause
    except sa_exc.DBAPIError as outer:
        return outer


@pytest.mark.parametrize(
    "error",
    [
        wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection"), invalidated=True),
        wrapped(asyncpg.exceptions.CannotConnectNowError("the database system is starting up")),
        wrapped(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")),
        wrapped(sqlite3.OperationalError("database is locked")),
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
        requests.exceptions.ConnectionError("storage unreachable"),
        google_exceptions.ServiceUnavailable("503 from storage"),  # type: ignore[no-untyped-call]
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages(error: BaseException) -> None:
    assert is_outage(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad input"),
        wrapped(sqlite3.OperationalError("no such table: jobs")),
        wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key")),
        google_exceptions.NotFound("no such object"),  # type: ignore[no-untyped-call]
        FileNotFoundError("gone"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_not_outages(error: BaseException) -> None:
    assert not is_outage(error)
