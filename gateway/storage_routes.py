"""Upload and download of bytes through HMAC-signed URLs (local storage backend only).

With GCS, browsers use V4 signed URLs straight to the bucket and these routes
answer 404. The signature covers the key, expiry and size limit; the key must
be a job's upload key, so a URL can never write outside a job's prefix.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from bytereview.core import (
    InvalidKeyError,
    LocalStorage,
    ObjectExistsError,
    Settings,
    Storage,
    StorageBackend,
    disposition,
    signing,
    storage_keys,
)
from gateway.errors import http_error, method_not_allowed
from gateway.stream_responses import ClosingStreamingResponse

CHUNK = 1024 * 1024


def mount(app: FastAPI, *, storage: Storage, settings: Settings) -> None:
    secret = settings.secret("signing_secret")
    local = settings.storage_backend is StorageBackend.LOCAL

    def _verify(request: Request, method: str) -> dict[str, str] | Response:
        if not local:
            return http_error(404, "NOT_FOUND", "signed URLs point at the bucket with GCS storage")
        try:
            params = signing.verify(secret, method=method, params=dict(request.query_params))
        except signing.SignatureError as exc:
            return http_error(403, "PERMISSION_DENIED", f"upload URL rejected: {exc}")
        return params

    @app.put("/v1/storage/objects", include_in_schema=False)
    async def upload(request: Request) -> Response:
        params = _verify(request, "PUT")
        if isinstance(params, Response):
            return params
        key = params["key"]
        if not storage_keys.is_upload_key(key):
            return http_error(403, "PERMISSION_DENIED", "this URL does not allow uploads")
        try:
            limit = int(params.get("max", "0"))
        except ValueError:
            return http_error(400, "INVALID_ARGUMENT", "invalid size limit")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return http_error(
                413, "RESOURCE_EXHAUSTED", f"the file is larger than the declared {limit} bytes"
            )
        assert isinstance(storage, LocalStorage)
        # Create-only: a signed URL uploads its file once. After that (the file analysed,
        # extracted) the bytes cannot be replaced under the job for the rest of the URL's life.
        gone = http_error(412, "FAILED_PRECONDITION", "this file was already uploaded")
        try:
            writer: Any = await asyncio.to_thread(storage.open_create, key)
        except InvalidKeyError as exc:
            return http_error(400, "INVALID_ARGUMENT", str(exc))
        except ObjectExistsError:
            return gone
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    writer.abort()
                    return http_error(
                        413,
                        "RESOURCE_EXHAUSTED",
                        f"the file is larger than the declared {limit} bytes",
                    )
                await asyncio.to_thread(writer.write, chunk)
        except BaseException:
            writer.abort()
            raise
        if received == 0:
            writer.abort()
            return http_error(400, "INVALID_ARGUMENT", "the upload is empty")
        try:
            await asyncio.to_thread(writer.close)
        except ObjectExistsError:
            return gone
        return Response(status_code=200)

    # Any other method: a 405 naming the two (the proxy's `/v1/...` catch-all said "no API
    # route", a 404, for a path that exists).
    async def other_method(request: Request) -> Response:
        return method_not_allowed(request.method, request.url.path, "GET, PUT")

    app.router.add_route(
        "/v1/storage/objects",
        other_method,
        methods=["POST", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"],
        include_in_schema=False,
    )

    @app.get("/v1/storage/objects", include_in_schema=False)
    async def download(request: Request) -> Response:
        params = _verify(request, "GET")
        if isinstance(params, Response):
            return params
        assert isinstance(storage, LocalStorage)
        try:
            handle = await asyncio.to_thread(storage.open_read, params["key"])
        except (FileNotFoundError, InvalidKeyError):
            return http_error(404, "NOT_FOUND", "the object does not exist")

        async def body() -> AsyncGenerator[bytes, None]:
            try:
                while chunk := await asyncio.to_thread(handle.read, CHUNK):
                    yield chunk
            finally:
                handle.close()

        # Closed when the answer ends (a HEAD's is cut after its first chunk), so the file is
        # closed then, not when the generator is collected (stream_responses).
        return ClosingStreamingResponse(
            body(),
            on_end=handle.close,
            media_type="application/octet-stream",
            headers={"content-disposition": disposition.attachment(params.get("filename", ""))},
        )
