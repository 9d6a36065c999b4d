"""gRPC status -> HTTP status and the JSON error body every error answer carries.

The table is google/rpc/code.proto's with one deliberate change: FAILED_PRECONDITION is 409
Conflict, not 400. The API uses it for "not in this state" (starting a job that is still
uploading, resuming one that is not paused): the request is well formed, and the same request
succeeds once the resource's state changes, which is what 409 means (RFC 9110 15.5.10). 400
is kept for requests that are wrong whatever the state, so a client can tell the two apart.
"""

from __future__ import annotations

import json

import grpc
from fastapi.responses import JSONResponse

from bytereview.core import request_id
from gateway.head_requests import with_head

HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
REQUEST_INFO = "type.googleapis.com/google.rpc.RequestInfo"


def error_response(code: grpc.StatusCode, message: str) -> JSONResponse:
    if code == grpc.StatusCode.UNAVAILABLE:
        message = message or "the service is unavailable; try again shortly"
    # grpc's name for OK..UNAUTHENTICATED matches google.rpc.Code's.
    return http_error(HTTP_STATUS.get(code, 500), code.name, message)


def method_not_allowed(method: str, path: str, allowed: str) -> JSONResponse:
    """A 405 in the API's error body, with the `Allow` header RFC 9110 (15.5.6) requires."""
    answer = http_error(405, "UNIMPLEMENTED", f"{method} is not allowed on {path}")
    if allowed:
        answer.headers["allow"] = with_head(allowed)
    return answer


def http_error(status: int, grpc_name: str, message: str) -> JSONResponse:
    """The error body: always a message, and the request id (also in `X-Request-Id`) as a
    google.rpc.RequestInfo detail (AIP-193), so what a user quotes leads to the log lines."""
    details = []
    if rid := request_id.get():
        details.append({"@type": REQUEST_INFO, "requestId": rid})
    text = message or grpc_name.replace("_", " ").lower()
    body = {"error": {"code": status, "status": grpc_name, "message": text, "details": details}}
    return JSONResponse(body, status_code=status)


def raw_http_error(status: int, reason: str, grpc_name: str, message: str) -> bytes:
    """The same error body as a whole HTTP/1.1 answer, for the connection-level refusals
    written to the socket before any request reaches the app (an oversized head, a client
    too slow to send one); the connection closes after it."""
    error = {"code": status, "status": grpc_name, "message": message, "details": []}
    body = json.dumps({"error": error}).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\n".encode()
        + b"content-type: application/json\r\n"
        + b"content-length: "
        + str(len(body)).encode()
        + b"\r\n"
        + b"connection: close\r\n\r\n"
        + body
    )
