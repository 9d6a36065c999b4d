"""HTTP's If-Match on an update, as the request's `etag` (AIP-154).

A REST client using HTTP's own precondition had it ignored: a stale `If-Match` overwrote a
newer version of a result, where the same etag in the body was refused. The header fills
the etag the call compares: the body resource's (a result's PATCH) or, for a custom method
whose body is the whole request (`:accept`, `:revert`), the request's own. A call without
one refuses the header rather than ignore it. A stale header is answered as HTTP says
(412 Precondition Failed); the same etag sent in the body keeps AIP-193's 409.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from bytereview.core.errors import InvalidArgument
from gateway.transcoder import Route

# The request itself holds the etag (a custom method's), not a resource in it.
REQUEST = ""


def etag_resource(route: Route) -> str | None:
    """Where the route's etag is: the request field holding the body resource, when that
    resource has an `etag`; REQUEST when the body is the request and it has one; None
    when the call takes no etag."""
    fields = route.method.input_type.fields_by_name
    if route.body == "*":
        return REQUEST if "etag" in fields else None
    body = fields.get(route.body) if route.body else None
    if body is None or body.message_type is None:
        return None
    return body.name if "etag" in body.message_type.fields_by_name else None


def if_match(message: Message, route: Route, values: list[str]) -> bool:
    """Sets the etag of `message` (or of its body resource) from the If-Match header's
    `values`; whether one was set. InvalidArgument when the call takes no etag, for more
    than one tag, or when the body names another one. `*` (any version) asks nothing."""
    tags = [tag.strip() for value in values for tag in value.split(",") if tag.strip()]
    if not tags or tags == ["*"]:
        return False
    if len(tags) > 1:
        raise InvalidArgument("If-Match: give one etag, the one the resource was read with")
    where = etag_resource(route)
    if where is None:
        raise InvalidArgument("If-Match: this call's resource has no etag to compare")
    # Any: protobuf's Message declares no fields; the route's descriptor said `etag` is one.
    holder: Any = message if where == REQUEST else getattr(message, where)
    if holder.etag and holder.etag != tags[0]:
        raise InvalidArgument("If-Match and the body's etag name different versions")
    holder.etag = tags[0]
    return True
