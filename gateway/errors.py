"""gRPC status -> HTTP status (google/rpc/code.proto's table) and the JSON error body."""

from __future__ import annotations

import grpc
from fastapi.responses import JSONResponse

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
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


def error_response(code: grpc.StatusCode, message: str) -> JSONResponse:
    status = HTTP_STATUS.get(code, 500)
    if code == grpc.StatusCode.UNAVAILABLE:
        message = message or "the service is unavailable; try again shortly"
    # grpc's name for OK..UNAUTHENTICATED matches google.rpc.Code's.
    body = {"error": {"code": status, "status": code.name, "message": message, "details": []}}
    return JSONResponse(body, status_code=status)


def http_error(status: int, grpc_name: str, message: str) -> JSONResponse:
    body = {"error": {"code": status, "status": grpc_name, "message": message, "details": []}}
    return JSONResponse(body, status_code=status)
