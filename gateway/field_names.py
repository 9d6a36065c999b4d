"""One field, one name: a request that sets a field under both its names is refused.

proto3 JSON accepts a field by its JSON name (`displayName`) and by its proto name
(`display_name`). Python's json_format takes both in one object and keeps whichever comes
last, silently (its duplicate check compares the keys, not the fields; Go's protojson, which
grpc-gateway uses, refuses it). So `{"display_name": "x", "displayName": "y"}` was a job named
"y": the same ambiguity as a key given twice (proxy.py refuses that), and what a filter in
front of the API reads under one name need not be what we use. The same goes for the query
string: `?pageSize=1&page_size=1000` set the field twice, the last one won.

An enum is named, as the OpenAPI document declares (and the query string already requires):
json_format also takes a number, and whatever `int()` takes, so `"taskMode": false`, `1.0`
and `" 1 "` each chose a mode the caller never named.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from bytereview.core import InvalidArgument

# Messages whose JSON form is not an object of their fields (Struct, Value, Timestamp...).
_WELL_KNOWN = "google.protobuf."


def check_body(body: object, desc: Descriptor) -> None:
    """Raise InvalidArgument when `body` (parsed JSON for a `desc` message) or any message
    inside it names one field twice."""
    _check_object(body, desc, "")


def check_query(keys: Iterable[str], desc: Descriptor) -> None:
    """Raise InvalidArgument when two query parameters (`a.b` paths) name one field."""
    seen: dict[str, str] = {}
    for key in keys:
        path = _proto_path(key, desc)
        if path is None:
            continue  # unknown: the transcoder says so
        earlier = seen.setdefault(path, key)
        if earlier != key:
            raise InvalidArgument(
                f"parameters {earlier[:100]!r} and {key[:100]!r} both set the field {path!r}"
            )


def _field(desc: Descriptor, name: str) -> FieldDescriptor | None:
    found = desc.fields_by_name.get(name)
    if found is None:
        found = next((f for f in desc.fields if f.json_name == name), None)
    return found


def _proto_path(key: str, desc: Descriptor) -> str | None:
    parts = []
    target: Descriptor | None = desc
    for part in key.split("."):
        field = _field(target, part) if target is not None else None
        if field is None:
            return None
        parts.append(field.name)
        target = field.message_type
    return ".".join(parts)


def _check_object(body: object, desc: Descriptor, where: str) -> None:
    if not isinstance(body, dict) or desc.full_name.startswith(_WELL_KNOWN):
        return
    names: dict[str, str] = {}
    for key, value in body.items():
        field = _field(desc, key)
        if field is None:
            continue  # unknown: json_format says so
        earlier = names.setdefault(field.name, key)
        if earlier != key:
            raise InvalidArgument(
                f"invalid request body: {where}{earlier!r} and {key!r} both set the field"
                f" {where}{field.name!r}"
            )
        if field.enum_type is not None:
            _check_enum(value, field, f"{where}{field.name}")
        _check_value(value, field, f"{where}{field.name}.")


def _check_enum(value: object, field: FieldDescriptor, where: str) -> None:
    enum = field.enum_type
    assert enum is not None  # only called for enum fields
    items = value if field.is_repeated and isinstance(value, list) else [value]
    for item in items:
        # null reads as the default, as for any field; anything else must be a value's name.
        if item is not None and not (isinstance(item, str) and item in enum.values_by_name):
            names = ", ".join(v.name for v in enum.values)
            raise InvalidArgument(
                f"invalid request body: {where} must be one of {names}, not {str(item)[:100]!r}"
            )


def _check_value(value: object, field: FieldDescriptor, where: str) -> None:
    desc = field.message_type
    if desc is None:
        return
    if desc.GetOptions().map_entry:
        entry_value = desc.fields_by_name["value"]
        if isinstance(value, dict) and entry_value.message_type is not None:
            for item in value.values():
                _check_object(item, entry_value.message_type, where)
        return
    if field.is_repeated:
        if isinstance(value, list):
            for item in value:
                _check_object(item, desc, where)
        return
    _check_object(value, desc, where)
