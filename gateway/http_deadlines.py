"""uvicorn's httptools protocol with deadlines for a client that stops sending (slowloris).

uvicorn times out only the idle gap after a response (keep-alive, reset by any byte): a
connection that sent nothing, half a head, or a body that never ends (a Content-Length it
does not send, a chunked body without its last chunk) was held open for ever, its request
task waiting in `receive()`. Every such connection costs a socket and a task; a few thousand
from one host used up the gateway's file descriptors and it stopped serving everyone.

Two rules, in the spirit of Apache's mod_reqtimeout and nginx's client_*_timeout:
- a head (request line and headers) must be complete within HEAD_SECONDS of its first byte,
  or of the connection's opening for its first request: trickling a byte at a time does not
  extend it;
- while a body is being read, every BODY_WINDOW_SECONDS must bring at least BODY_MIN_BYTES
  (a body that ends sooner is done). A slow network sends far more; a stalled client
  sends nothing. Time the client is not to blame for is not counted: reading paused by us
  (a full buffer, a pipelined request waiting its turn) and a client waiting for our
  `100 Continue`.

A request whose response has not started is answered 408 and the connection closed;
otherwise the connection is only closed. Either way the request's task sees a disconnect
(an upload drops its partial file) and ends.

A third rule is for a client that stops reading: an answer it does not read waits in the
transport's buffer (all of a unary answer is written at once; a stream waits to write its
next chunk), and closing does not free it, since `close()` first flushes the buffer to a
client that takes nothing. So once writing has been paused (the buffer over its high-water
mark) for WRITE_STALL_SECONDS on end, the connection is aborted, buffer and all, as nginx's
send_timeout does.

The quiet time while a response is produced (an SSE stream, a long export) is not the
client's: no deadline runs then.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.errors import raw_http_error

HEAD_SECONDS = 20.0
BODY_WINDOW_SECONDS = 30.0
BODY_MIN_BYTES = 1024
WRITE_STALL_SECONDS = 60.0


def _refusal(message: str) -> bytes:
    return raw_http_error(408, "Request Timeout", "DEADLINE_EXCEEDED", message)


class SlowClientDeadlines(HttpToolsProtocol):
    # Class attributes, so tests can shorten them on a real server.
    head_seconds = HEAD_SECONDS
    body_window_seconds = BODY_WINDOW_SECONDS
    body_min_bytes = BODY_MIN_BYTES
    write_stall_seconds = WRITE_STALL_SECONDS

    _in_body = False
    _head_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _write_timer: asyncio.TimerHandle | None = None
    _window_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # The first request's head is owed from the start: a connection that sends nothing
        # is a slow head too.
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._in_body:
            self._window_bytes += len(data)
        elif self._head_timer is None:
            # The first byte of the next head (or of anything the parser skips before it).
            self._start_head_timer()
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._in_body = True
        self._restart_body_window()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # The next head's clock starts with its first byte, not now: until the response is
        # sent the client has nothing to send.
        self._in_body = False
        self._cancel_body_timer()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        self._cancel_write_timer()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.write_stall_seconds, self._write_stalled)

    def resume_writing(self) -> None:
        self._cancel_write_timer()
        super().resume_writing()

    # -- timers

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.head_seconds, self._head_overdue)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _restart_body_window(self) -> None:
        self._cancel_body_timer()
        self._window_bytes = 0
        self._body_timer = self.loop.call_later(self.body_window_seconds, self._body_window_ended)

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _cancel_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_stalled(self) -> None:
        self._write_timer = None
        # Closing (after a keep-alive timeout, or a refusal) still waits for the buffer to
        # be read: only the protocol's own transport is checked, not is_closing().
        if self.transport.get_protocol() is not self or not self.flow.write_paused:
            return
        self.logger.info(
            "aborting a connection from %s: it read nothing for %g s",
            self.client,
            self.write_stall_seconds,
        )
        self.transport.abort()

    def _still_ours(self) -> bool:
        # A WebSocket upgrade hands the transport to another protocol; a closing one is done.
        transport = self.transport
        return not transport.is_closing() and transport.get_protocol() is self

    def _head_overdue(self) -> None:
        self._head_timer = None
        if not self._still_ours():
            return
        cycle = self.cycle
        # Only between responses may an answer be written: mid-response (a head trickled
        # behind a pipelined request) it would land inside the other answer.
        between = cycle is None or cycle.response_complete
        self._give_up(
            f"the request head did not arrive within {self.head_seconds:g} s", answer=between
        )

    def _body_window_ended(self) -> None:
        self._body_timer = None
        if not self._in_body or not self._still_ours():
            return
        cycle = self.cycle
        waiting_on_us = self.flow.read_paused or (
            cycle is not None and cycle.waiting_for_100_continue
        )
        if waiting_on_us or self._window_bytes >= self.body_min_bytes:
            self._restart_body_window()
            return
        self._give_up(
            f"the request body stalled: under {self.body_min_bytes} bytes"
            f" in {self.body_window_seconds:g} s",
            answer=cycle is None or not cycle.response_started,
        )

    def _give_up(self, message: str, *, answer: bool) -> None:
        if answer:
            self.transport.write(_refusal(message))
        self.logger.info("closing a slow connection from %s: %s", self.client, message)
        # connection_lost then tells the request's task the client is gone.
        self.transport.close()
