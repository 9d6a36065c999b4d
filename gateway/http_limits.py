"""uvicorn's httptools protocol with a bound on a request's head (request line and headers).

httptools buffers a header until it ends, however long: a 50 MB header or 100,000 headers were
read into memory and answered 200, so a few connections could exhaust the gateway's memory.
h11 has a bound but costs the gateway CPU on every call (DESIGN: httptools), so the bytes of
each request's head are counted here as they are fed to the parser, in slices, and past
MAX_HEAD_BYTES the request is answered 431 and the connection closed. A body is fed whole.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.errors import raw_http_error

# nginx's default allows 4 x 8 KiB of headers; a JWT is at most 16 KiB (core.auth).
MAX_HEAD_BYTES = 64 * 1024
# The parser is fed at most this much at a time while a head is being read.
SLICE = 8 * 1024
_MESSAGE = f"the request line and headers are larger than {MAX_HEAD_BYTES // 1024} KiB"
REFUSAL = raw_http_error(431, "Request Header Fields Too Large", "RESOURCE_EXHAUSTED", _MESSAGE)


class BoundedHeadProtocol(HttpToolsProtocol):
    # A connection starts with a head; a head ends at on_headers_complete, the next one
    # starts after on_message_complete.
    _in_head = True
    _head_bytes = 0

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # What follows on the connection is the next request's head.
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        start = 0
        while start < len(data):
            if not self._in_head:
                super().data_received(data[start:] if start else data)
                return
            piece = data[start : start + SLICE]
            self._head_bytes += len(piece)
            if self._head_bytes > MAX_HEAD_BYTES:
                self.transport.write(REFUSAL)
                self.transport.close()
                return
            super().data_received(piece)
            if self.transport.is_closing():
                return  # the parser refused the request (a 400) or the client left
            start += len(piece)
