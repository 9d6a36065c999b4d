"""A streamed answer whose body generator is closed when the answer ends, for any reason.

Starlette's StreamingResponse iterates its body with `async for` and never closes it: when
the answer ends before the body does (HeadAsGet stops a HEAD's stream after its first chunk
by raising out of `send`; an error while sending; a server that reports a client gone by
raising, as ASGI 2.4 allows), the generator is left suspended at its `yield`, and its
cleanup (cancelling the upstream gRPC call, closing a file) runs only when it is collected.
The exception that stopped it holds a traceback whose frames hold it: a reference cycle, so
that is at the cyclic collector's next full pass, seconds to minutes later. Until then the
backend keeps the call: a watch or export slot of the user's taken (a 429 for the next one),
a render or a query producing into the void.

So the response closes its generator itself once it is done, in the request's own task, and
then runs `on_end`: closing a generator that never started does not run its body, so what
the generator would clean up is passed here too when it exists before the first chunk.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class ClosingStreamingResponse(StreamingResponse):
    def __init__(
        self,
        content: AsyncGenerator[bytes, None],
        *,
        media_type: str,
        headers: Mapping[str, str] | None = None,
        on_end: Callable[[], object] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._chunks = content
        self._on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                # Suspended at a `yield`: its cleanup runs now (GeneratorExit). Already
                # finished, or never started: nothing happens.
                await self._chunks.aclose()
            finally:
                if self._on_end is not None:
                    self._on_end()
