"""What every decoded request is checked for before its servicer runs (core.rpc calls it).

The wire format lets through values no method can use, and servicers each assumed them away:
- bytes that are not a message of the request's type at all (grpc answered UNKNOWN, naming
  the parser's exception class): refused on every service;
- on public services, an enum number the proto does not define: proto3 enums are open, so
  a raw client may send any int32, and `Enum.Name(number)` in a servicer raised ValueError
  (INTERNAL);
- on public services, a string holding U+0000: PostgreSQL's text cannot store it (the
  insert fails: INTERNAL), and no name, path, instruction or value needs it;
- on public services, a list (repeated field or map) longer than MAX_LIST_ENTRIES: each
  method's own limit (10,000 files, 100 fields) was checked only after every entry was
  converted, seconds of the event loop for the 900,000 entries a 32 MiB message holds.

Each is INVALID_ARGUMENT naming the field. The workers' own service is internal: its
batches answer an unreadable report on its own (one unknown failure class must not fail
the other reports of the batch), its servicer checks what it reads, and what workers report
is the platform's text, from documents anyone can upload: its NUL characters are removed
rather than refused (an error message quoting a hostile file failed its report on
PostgreSQL, INTERNAL, on every redelivery until the task was dead-lettered).

Only the fields that can lead to a list, an enum or a string are visited (a plan per
message type).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from bytereview.core.errors import InvalidArgument
from bytereview.core.limits import MAX_FILES_PER_CREATE

# The longest list a public request needs: CreateJob's files.
MAX_LIST_ENTRIES = MAX_FILES_PER_CREATE

_T = FieldDescriptor
# Enums of google.protobuf (NullValue) are not checked: any number of them reads as null.
_WELL_KNOWN = "google.protobuf."


@dataclass(frozen=True, slots=True)
class Undecodable:
    """What a request deserializer gives instead of raising (see `tolerant`)."""

    type_name: str


def tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`deserialize`, returning Undecodable instead of raising on bytes that do not parse;
    `check` then refuses it after the caller is authenticated, as INVALID_ARGUMENT."""
    if deserialize is None:
        return None
    descriptor = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)
    name = descriptor.full_name if descriptor is not None else "request"

    def parse(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except DecodeError:
            return Undecodable(name)

    return parse


def check(request: object, *, public: bool) -> None:
    """Raise InvalidArgument for an undecodable request and, when `public`, for a list too
    long, an unknown enum number or a NUL character anywhere in it (map keys included).
    An internal request's strings lose their NUL characters instead (in place)."""
    if isinstance(request, Undecodable):
        raise InvalidArgument(f"the request is not a valid {request.type_name} message")
    if not isinstance(request, Message):
        return
    if not public:
        _clean(request)
        return
    problem = _problem(request, "")
    if problem is not None:
        raise InvalidArgument(problem)


def _problem(message: Message, path: str) -> str | None:
    desc: Descriptor = message.DESCRIPTOR  # type: ignore[assignment]  # upb's is the same class
    for field in _plan(desc):
        name = f"{path}.{field.name}" if path else field.name
        value = getattr(message, field.name)
        if field.is_repeated and len(value) > MAX_LIST_ENTRIES:
            return f"{name} holds {len(value)} entries; at most {MAX_LIST_ENTRIES}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            found = _map_problem(field, value, name)
        elif field.is_repeated:
            found = _repeated_problem(field, value, name)
        elif field.message_type is not None and not message.HasField(field.name):
            continue
        else:
            found = _one(field, value, name)
        if found is not None:
            return found
    return None


def _repeated_problem(field: FieldDescriptor, value: Any, path: str) -> str | None:
    for i, item in enumerate(value):
        found = _one(field, item, f"{path}[{i}]")
        if found is not None:
            return found
    return None


def _map_problem(field: FieldDescriptor, value: Any, path: str) -> str | None:
    entry = field.message_type
    assert entry is not None  # a map field's type is its entry message
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    for key, item in value.items():
        where = f"{path}[{key!r}]"
        found = _one(key_field, key, where) or _one(value_field, item, where)
        if found is not None:
            return found
    return None


def _one(field: FieldDescriptor, value: Any, path: str) -> str | None:
    if field.type == _T.TYPE_MESSAGE:
        return _problem(value, path)  # nothing to walk when its plan is empty
    enum = field.enum_type
    if enum is not None:
        if enum.values_by_number.get(value) is None:
            return f"{path}: {value} is not a value of {enum.full_name}"
        return None
    if field.type == _T.TYPE_STRING and "\x00" in value:
        return f"{path} must not contain a NUL character (U+0000)"
    return None


# The fields worth visiting per message type (full name) and walk (cleaning or not).
_PLANS: dict[tuple[str, bool], tuple[FieldDescriptor, ...]] = {}


def _plan(desc: Descriptor, *, cleaning: bool = False) -> tuple[FieldDescriptor, ...]:
    plan = _PLANS.get((desc.full_name, cleaning))
    if plan is None:
        _PLANS.update(_plans_from(desc, cleaning))
        plan = _PLANS[(desc.full_name, cleaning)]
    return plan


def _checked_here(field: FieldDescriptor, cleaning: bool) -> bool:
    if cleaning:
        return field.type == _T.TYPE_STRING
    if field.is_repeated:
        return True  # its length, at least
    enum = field.enum_type
    if enum is not None:
        return not enum.full_name.startswith(_WELL_KNOWN)
    return field.type == _T.TYPE_STRING


def _entered(desc: Descriptor, cleaning: bool) -> bool:
    # Cleaning leaves google.protobuf types (Struct values) alone: they are stored as JSON,
    # where a NUL is written escaped.
    return not (cleaning and desc.full_name.startswith(_WELL_KNOWN))


def _plans_from(
    root: Descriptor, cleaning: bool
) -> dict[tuple[str, bool], tuple[FieldDescriptor, ...]]:
    """Plans for `root` and every type under it. Types may be recursive (Struct, Value,
    ListValue), so whether a type leads to a checked field is found as a fixpoint."""
    types: dict[str, Descriptor] = {}
    todo = [root]
    while todo:
        desc = todo.pop()
        if desc.full_name not in types:
            types[desc.full_name] = desc
            todo += [
                f.message_type
                for f in desc.fields
                if f.message_type is not None and _entered(f.message_type, cleaning)
            ]
    leads = {
        name
        for name, desc in types.items()
        if _entered(desc, cleaning) and any(_checked_here(f, cleaning) for f in desc.fields)
    }
    grown = True
    while grown:
        grown = False
        for name, desc in types.items():
            if name not in leads and any(
                f.message_type is not None and f.message_type.full_name in leads
                for f in desc.fields
            ):
                leads.add(name)
                grown = True
    return {
        (name, cleaning): tuple(
            f
            for f in desc.fields
            if _checked_here(f, cleaning)
            or (f.message_type is not None and f.message_type.full_name in leads)
        )
        for name, desc in types.items()
    }


def _clean(message: Message) -> None:
    """Every string of `message` without NUL characters, in place (map keys included)."""
    desc: Descriptor = message.DESCRIPTOR  # type: ignore[assignment]  # upb's is the same class
    for field in _plan(desc, cleaning=True):
        value = getattr(message, field.name)
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            _clean_map(value, entry.fields_by_name["value"].message_type)
        elif field.type == _T.TYPE_STRING:
            if field.is_repeated:
                for i, item in enumerate(value):
                    if "\x00" in item:
                        value[i] = item.replace("\x00", "")
            elif "\x00" in value:
                setattr(message, field.name, value.replace("\x00", ""))
        elif field.is_repeated:
            for item in value:
                _clean(item)
        elif message.HasField(field.name):
            _clean(value)


def _clean_map(value: Any, item_type: Descriptor | None) -> None:
    for key in list(value):
        item = value[key]
        if item_type is None:
            if isinstance(item, str) and "\x00" in item:
                item = value[key] = item.replace("\x00", "")
        elif _entered(item_type, cleaning=True):
            _clean(item)
        if isinstance(key, str) and "\x00" in key:
            clean_key = key.replace("\x00", "")
            if item_type is not None:
                value[clean_key].CopyFrom(item)
            else:
                value[clean_key] = item
            del value[key]
