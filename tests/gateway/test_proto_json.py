"""The gateway's JSON printer writes exactly what json_format.MessageToDict writes.

Every message type the API returns (and each type nested in them) is filled at random,
including the awkward values: unknown numbers of open enums, NaN and infinities, 64-bit
ints, bytes, maps with int and bool keys, well-known types.
"""

from __future__ import annotations

import math
import random
from typing import Any

from google.protobuf import (
    any_pb2,
    duration_pb2,
    field_mask_pb2,
    json_format,
    struct_pb2,
    timestamp_pb2,
)
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import message_class, public_routes
from gateway.proto_json import message_to_dict

_T = FieldDescriptor
_INTS = {
    _T.TYPE_INT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _T.TYPE_UINT32: (0, 2**32 - 1),
    _T.TYPE_FIXED32: (0, 2**32 - 1),
    _T.TYPE_INT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _T.TYPE_UINT64: (0, 2**64 - 1),
    _T.TYPE_FIXED64: (0, 2**64 - 1),
}


def _reachable() -> list[Descriptor]:
    """Every message type a route answers with, and the types inside them."""
    seen: dict[str, Descriptor] = {}
    todo = [route.method.output_type for route in public_routes().routes]
    while todo:
        descriptor = todo.pop()
        if descriptor.full_name in seen:
            continue
        seen[descriptor.full_name] = descriptor
        todo.extend(f.message_type for f in descriptor.fields if f.message_type is not None)
    return sorted(seen.values(), key=lambda d: d.full_name)


API_TYPES = _reachable()
DESCRIPTORS = {d.full_name: d for d in API_TYPES}


def _scalar(field: FieldDescriptor, rnd: random.Random) -> Any:
    kind = field.type
    if kind in _INTS:
        low, high = _INTS[kind]
        return rnd.choice([0, 1, low, high, rnd.randint(low, high)])
    if kind in (_T.TYPE_FLOAT, _T.TYPE_DOUBLE):
        return rnd.choice([0.0, 1.5, -2.25, 1e-7, 3.4e38, math.nan, math.inf, -math.inf])
    if kind == _T.TYPE_BOOL:
        return rnd.random() < 0.5
    if kind == _T.TYPE_STRING:
        return rnd.choice(["", "a", "jobs/abc", "é ✓ \u2028", '"quoted"\n'])
    if kind == _T.TYPE_BYTES:
        return rnd.randbytes(rnd.randint(0, 9))
    if kind == _T.TYPE_ENUM:
        assert field.enum_type is not None
        numbers = [v.number for v in field.enum_type.values]
        # proto3 enums are open: a number from a newer server must survive.
        return rnd.choice([*numbers, max(numbers) + 7])
    raise AssertionError(f"unhandled field type {kind} of {field.full_name}")


def _fill(msg: Message, rnd: random.Random, depth: int) -> None:
    # The well-known types are the generated classes themselves, so isinstance narrows them.
    if isinstance(msg, timestamp_pb2.Timestamp):
        msg.seconds = rnd.randint(-62135596800, 253402300799)
        msg.nanos = rnd.choice([0, 5_000_000, 123_456_000, 7, 999_999_999])
        return
    if isinstance(msg, duration_pb2.Duration):
        msg.seconds = rnd.randint(0, 10**6)
        msg.nanos = rnd.choice([0, 1_000, 500_000_000])
        return
    if isinstance(msg, field_mask_pb2.FieldMask):
        msg.paths.extend(rnd.sample(["values.total", "status", "display_name"], 2))
        return
    if isinstance(msg, struct_pb2.Value):
        kind = rnd.choice(["null", "number", "string", "bool", "struct", "list"])
        if kind == "number":
            msg.number_value = rnd.choice([0.0, -1.5, 2**53])
        elif kind == "string":
            msg.string_value = "x"
        elif kind == "bool":
            msg.bool_value = True
        elif kind == "struct" and depth > 0:
            _fill(msg.struct_value, rnd, depth - 1)
        elif kind == "list" and depth > 0:
            _fill(msg.list_value, rnd, depth - 1)
        else:
            msg.null_value = struct_pb2.NULL_VALUE
        return
    if isinstance(msg, any_pb2.Any):
        return  # an Any needs its type in the pool; none of ours carries one
    for field in DESCRIPTORS[msg.DESCRIPTOR.full_name].fields:
        if rnd.random() < 0.3:
            continue
        sub = field.message_type
        if sub is not None and sub.GetOptions().map_entry:
            mapping: Any = getattr(msg, field.name)
            key_field, value_field = sub.fields_by_name["key"], sub.fields_by_name["value"]
            for _ in range(rnd.randint(0, 3)):
                key = _scalar(key_field, rnd)
                if value_field.message_type is not None:
                    if depth > 0:
                        _fill(mapping[key], rnd, depth - 1)
                else:
                    mapping[key] = _scalar(value_field, rnd)
        elif field.is_repeated:
            items: Any = getattr(msg, field.name)
            for _ in range(rnd.randint(0, 3)):
                if sub is None:
                    items.append(_scalar(field, rnd))
                elif depth > 0:
                    _fill(items.add(), rnd, depth - 1)
        elif sub is not None:
            if depth > 0:
                child: Any = getattr(msg, field.name)
                _fill(child, rnd, depth - 1)
                child.SetInParent()
        else:
            setattr(msg, field.name, _scalar(field, rnd))


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (json_format writes it as the string "NaN")."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_the_api_returns_enough_kinds_of_field_to_make_this_meaningful() -> None:
    names = {d.full_name for d in API_TYPES}
    assert {"bytereview.jobs.v1.Job", "google.protobuf.Timestamp"} <= names
    kinds = {f.type for d in API_TYPES for f in d.fields}
    assert {_T.TYPE_ENUM, _T.TYPE_MESSAGE, _T.TYPE_STRING, _T.TYPE_BOOL} <= kinds


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_every_api_type_prints_as_json_format_prints_it(seed: int) -> None:
    rnd = random.Random(seed)
    for descriptor in API_TYPES:
        msg = message_class(descriptor)()
        _fill(msg, rnd, depth=3)
        expected = json_format.MessageToDict(msg)
        assert _same(message_to_dict(msg), expected), descriptor.full_name
