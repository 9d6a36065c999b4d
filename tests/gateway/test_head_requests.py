"""HEAD is answered as GET without its body (gateway/head_requests.py), over a socket to the
gateway's real HTTP server: a body sent after a HEAD would be read as the start of the next
answer on the same connection, so each HEAD here is followed by a GET on that connection."""

from __future__ import annotations

import asyncio

import pytest

from bytereview.core import DEV_TOKEN

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
AUTH = f"Authorization: Bearer {DEV_TOKEN}\r\n"


async def _head_then_get(port: int, path: str, headers: str = "") -> list[dict[str, str]]:
    """The answers' status lines and headers, in order, with the GET's body length checked."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        answers: list[dict[str, str]] = []
        for method in ("HEAD", "GET"):
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            status, *lines = head.decode().strip().split("\r\n")
            fields = dict(line.lower().split(": ", 1) for line in lines)
            fields["status"] = status.split(" ")[1]
            answers.append(fields)
        get = answers[1]
        if "content-length" in get:
            await asyncio.wait_for(reader.readexactly(int(get["content-length"])), timeout=10)
        else:
            assert get.get("transfer-encoding") == "chunked"
            await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), timeout=10)
        # Nothing more: a HEAD's body would have shown up as garbage before the GET's head.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), timeout=0.3)
        return answers
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("path", "headers", "status", "kind"),
    [
        ("/healthz", "", "200", "application/json"),
        ("/v1/jobs", AUTH, "200", "application/json"),
        ("/v1/jobs", "", "401", "application/json"),  # checked as the GET would be
        ("/app/jobs", "", "200", "text/html"),
        ("/openapi.json", "", "200", "application/json"),
    ],
)
async def test_head_answers_what_get_would_without_the_body(
    port: int, path: str, headers: str, status: str, kind: str
) -> None:
    head, get = await _head_then_get(port, path, headers)
    assert head["status"] == get["status"] == status
    assert head["content-type"].startswith(kind)
    assert head["content-type"] == get["content-type"]
    assert head.get("content-length") == get.get("content-length")
