"""A REST HEAD, told to the backend of a streamed answer as gRPC metadata.

The gateway answers HEAD as the GET without its body (gateway/head_requests.py), and cuts a
streamed body after its first chunk. That is too late for a backend that reads ahead: an
export's rows were read (gRPC's flow-control window and chunks of many rows each) before the
gateway ever saw its first chunk. So the gateway says `x-http-method: HEAD` on a streamed
call made for a HEAD, and a backend whose answer's head is known without its body (an
export: its type and file name, not its rows; a page image: its type and page count, not
its pixels) answers that head alone: its initial metadata and one empty message. A backend
that ignores it is still cut after its first message.
"""

from __future__ import annotations

from bytereview.core.rpc import Context

HEAD_ONLY = ("x-http-method", "HEAD")


def head_only(context: Context) -> bool:
    """Whether the call stands for a REST HEAD: only the answer's head is wanted."""
    return any((key, value) == HEAD_ONLY for key, value in (context.invocation_metadata() or ()))
