"""The gateway's HTTP server drops clients that stop sending (gateway/http_deadlines.py),
over a real socket; the deadlines are shortened so the tests run in seconds."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest

from bytereview.core import DEV_TOKEN
from gateway.http_deadlines import SlowClientDeadlines

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
AUTH = f"Authorization: Bearer {DEV_TOKEN}\r\n".encode()
HEAD = 0.6
WINDOW = 0.6
WRITE_STALL = 1.0
# Every connection below was held open for ever: well past its deadline is "for ever" here.
PATIENCE = 8.0


@pytest.fixture(autouse=True)
def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SlowClientDeadlines, "head_seconds", HEAD)
    monkeypatch.setattr(SlowClientDeadlines, "body_window_seconds", WINDOW)
    monkeypatch.setattr(SlowClientDeadlines, "write_stall_seconds", WRITE_STALL, raising=False)


async def _held(port: int, sent: bytes, trickle: bytes = b"") -> tuple[bytes, float]:
    """What the server answers to `sent` (then `trickle`, a byte every 0.1 s) before it
    closes the connection, and how long it took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(sent)
    await writer.drain()

    async def dribble() -> None:
        for byte in trickle:
            await asyncio.sleep(0.1)
            writer.write(bytes([byte]))
            await writer.drain()

    dribbling = asyncio.create_task(dribble())
    try:
        answer = await asyncio.wait_for(reader.read(), timeout=PATIENCE)
        return answer, time.monotonic() - started
    finally:
        dribbling.cancel()
        writer.close()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _message(answer: bytes) -> str:
    return str(json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["message"])


async def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    answer, took = await _held(port, b"")
    assert _status(answer) == 408
    assert "head did not arrive" in _message(answer)
    assert took < HEAD + 2


async def test_half_a_head_is_408(port: int) -> None:
    answer, _ = await _held(port, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
    assert _status(answer) == 408


async def test_a_head_trickled_byte_by_byte_does_not_extend_its_deadline(port: int) -> None:
    # A byte every 0.1 s for 5 s: each byte would reset an idle timer.
    answer, took = await _held(port, b"GET /healthz HTTP/1.1\r\n", trickle=b"X" * 50)
    assert _status(answer) == 408
    assert took < HEAD + 2


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 100\r\n\r\n{",  # declares more than it sends
        b"Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n",  # no last chunk
    ],
)
async def test_a_json_body_that_never_ends_is_408(port: int, framing: bytes) -> None:
    answer, _ = await _held(port, b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\n" + AUTH + framing)
    assert _status(answer) == 408
    assert "body stalled" in _message(answer)


async def test_a_stalled_upload_is_closed_and_leaves_no_file(port: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        created = await client.post(
            "/v1/jobs",
            headers={"Authorization": f"Bearer {DEV_TOKEN}"},
            json={"files": [{"path": "a.pdf", "sizeBytes": 10}]},
        )
        url = httpx.URL(created.json()["uploadTargets"][0]["url"])
        target = url.raw_path.decode()
        answer, _ = await _held(
            port,
            f"PUT {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n%PD".encode(),
        )
        assert _status(answer) == 408
        # The partial file was dropped: the same URL takes the whole file afterwards.
        assert (await client.put(target, content=b"%PDF-1.4\n\n")).status_code == 200


async def test_a_slow_but_steady_body_is_read(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SlowClientDeadlines, "body_min_bytes", 3)
    body = json.dumps({"files": [{"path": "a.pdf", "sizeBytes": 3}]}).encode()
    head = b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\n" + AUTH
    head += b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    # 10 bytes a second for ~5 s: several windows, each with twice its minimum.
    answer, took = await _held(port, head, trickle=body)
    assert _status(answer) == 200, answer
    assert took > 3 * WINDOW


async def test_quiet_while_we_answer_is_not_the_clients_fault(port: int) -> None:
    # An SSE watch is silent from the client's side for longer than every deadline, and a
    # keep-alive connection's next request still gets its full head deadline.
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {DEV_TOKEN}"}
    ) as client:
        created = await client.post("/v1/jobs", json={"files": [{"path": "a.pdf", "sizeBytes": 3}]})
        name = created.json()["job"]["name"]
        lines: list[str] = []
        async with client.stream(
            "GET", f"/v1/{name}:watch", headers={"Accept": "text/event-stream"}
        ) as stream:

            async def read() -> None:
                async for line in stream.aiter_lines():
                    lines.append(line)

            reading = asyncio.create_task(read())
            await asyncio.sleep(3 * max(HEAD, WINDOW))
            still_open = not reading.done()
            reading.cancel()
        assert still_open, lines
        assert any(line.startswith("data:") for line in lines)
        for _ in range(2):
            assert (await client.get("/v1/jobs")).status_code == 200
            await asyncio.sleep(HEAD * 1.5)


async def test_a_client_that_stops_reading_is_cut_off(port: int) -> None:
    # Answers the client never reads sat in the gateway's buffer (and their requests' tasks
    # waited to write more) for as long as the connection lasted: closing waits for the
    # buffer to be read. After WRITE_STALL seconds of paused writing it is aborted.
    headers = {"Authorization": f"Bearer {DEV_TOKEN}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as c:
        files = [{"path": f"{i:04d}-" + "p" * 900 + ".pdf", "sizeBytes": 3} for i in range(1000)]
        created = await c.post("/v1/jobs", json={"files": files})
        assert created.status_code == 200, created.text
        job = created.json()["job"]["name"]
        whole = await c.get(f"/v1/{job}/files", params={"pageSize": 1000})
        assert len(whole.content) > 1_000_000

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow reader's window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    # Eight pipelined: more than the kernel's socket buffers take, so the rest waits in ours.
    writer.write(
        f"GET /v1/{job}/files?pageSize=1000 HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {DEV_TOKEN}\r\n\r\n".encode()
        * 8
    )
    await writer.drain()
    await asyncio.sleep(WRITE_STALL + 3)  # reads nothing meanwhile
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), timeout=PATIENCE):
            received += chunk
    except ConnectionResetError:
        pass
    finally:
        writer.close()
    # What was in flight arrives; the rest of the answers was dropped with the connection.
    assert len(received) < 8 * len(whole.content)
