"""The gateway's HTTP server bounds a request's head (gateway/http_limits.py), over a socket."""

from __future__ import annotations

import asyncio
import json

import pytest

from bytereview.core import DEV_TOKEN

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
AUTH = f"Authorization: Bearer {DEV_TOKEN}\r\n".encode()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return status, await asyncio.wait_for(reader.readexactly(length), timeout=10)


async def _one(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    try:
        return await _answer(reader)
    finally:
        writer.close()


@pytest.mark.parametrize(
    "headers",
    [b"X-Big: " + b"a" * 100_000 + b"\r\n", b"".join(b"X-H%d: 1\r\n" % i for i in range(10_000))],
)
async def test_a_head_over_64_kib_is_431(port: int, headers: bytes) -> None:
    # Both were read into memory whole (50 MB as readily) and answered 200.
    status, body = await _one(
        port, b"GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\n" + AUTH + headers + b"\r\n"
    )
    assert status == 431
    assert "larger than 64 KiB" in json.loads(body)["error"]["message"]


async def test_a_big_body_and_heads_under_the_bound_on_one_connection(port: int) -> None:
    # The bound is per request (a keep-alive connection's next head counts afresh), and a
    # body arriving with its head is not counted.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    padding = b"X-Pad: " + b"p" * 40_000 + b"\r\n"
    body = json.dumps({"files": [{"path": "a.pdf", "sizeBytes": 3}], "displayName": " " * 30})
    big = body.encode() + b" " * 900_000
    try:
        for _ in range(2):
            writer.write(
                b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\n"
                + AUTH
                + padding
                + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(big)
                + big
            )
            await writer.drain()
            status, answer = await _answer(reader)
            assert status == 200, answer
    finally:
        writer.close()
