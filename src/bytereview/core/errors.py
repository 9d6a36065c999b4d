"""Domain errors: raised by code that imports no gRPC, mapped to status codes in one place.

Each names its gRPC status code (`grpc.StatusCode[name]`); bytereview.core.rpc maps it.
"""

from __future__ import annotations


class DomainError(Exception):
    """An error the caller can act on. `code` is the gRPC status it maps to."""

    code: str = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    code = "INVALID_ARGUMENT"


class NotFound(DomainError):
    code = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    code = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A concurrency conflict: the resource changed since the caller read it (an etag that
    no longer matches, AIP-154). Read it again and retry."""

    code = "ABORTED"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class ResourceExhausted(DomainError):
    code = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    code = "UNAVAILABLE"
