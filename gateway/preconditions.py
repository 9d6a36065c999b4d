"""HTTP's If-Match on an update, as the resource's `etag` (AIP-154).

A REST client using HTTP's own precondition had it ignored: a stale `If-Match` overwrote a
newer version of a result, where the same etag in the body was refused. The header fills the
body resource's `etag`; a resource without one refuses the header rather than ignore it.
"""

from __future__ import annotations

from google.protobuf.message import Message

from bytereview.core.errors import InvalidArgument
from gateway.transcoder import Route


def etag_resource(route: Route) -> str | None:
    """The request field holding the resource the route's body is, when that resource has
    an `etag` (AIP-154); None otherwise."""
    if route.body in ("", "*"):
        return None
    body = route.method.input_type.fields_by_name.get(route.body)
    if body is None or body.message_type is None:
        return None
    return body.name if "etag" in body.message_type.fields_by_name else None


def if_match(message: Message, route: Route, values: list[str]) -> None:
    """Sets the etag of `message`'s body resource from the If-Match header's `values`.
    InvalidArgument when the route's resource has no etag, for more than one tag, or when
    the body names another one. `*` (any version) asks nothing."""
    tags = [tag.strip() for value in values for tag in value.split(",") if tag.strip()]
    if not tags or tags == ["*"]:
        return
    if len(tags) > 1:
        raise InvalidArgument("If-Match: give one etag, the one the resource was read with")
    body = etag_resource(route)
    if body is None:
        raise InvalidArgument("If-Match: this call's resource has no etag to compare")
    resource = getattr(message, body)
    if resource.etag and resource.etag != tags[0]:
        raise InvalidArgument("If-Match and the body's etag name different versions")
    resource.etag = tags[0]
