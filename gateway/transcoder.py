"""HTTP <-> gRPC transcoding from `google.api.http` annotations (an envoy-free grpc-gateway).

Routes come from the service descriptors, so an annotated RPC added to a proto
gets its REST route with no gateway code. Mapping rules follow google/api/http.proto:
path variables fill fields by path, `body: "*"` maps the JSON body onto the whole
request, `body: "field"` onto one field, and remaining fields come from the query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, json_format, message_factory
from google.protobuf.message import Message

from bytereview.core import InvalidArgument
from gateway import field_names
from gateway.proto_json import message_to_dict

# A variable of an HTTP rule's path: `{field.path}` or `{field.path=segments/*}`.
VARIABLE = re.compile(r"\{([a-zA-Z0-9_.]+)(?:=([^}]*))?\}")
FIELD_MASK = "google.protobuf.FieldMask"


@dataclass(frozen=True, slots=True)
class Route:
    """One HTTP binding of one RPC."""

    verb: str
    template: str
    regex: re.Pattern[str]
    variables: tuple[str, ...]
    body: str
    service: str
    method: descriptor.MethodDescriptor
    upstream: str  # which backend serves it: "jobs", "ingest" or "extract"

    @property
    def grpc_path(self) -> str:
        return f"/{self.service}/{self.method.name}"

    @property
    def server_streaming(self) -> bool:
        return bool(self.method.server_streaming)


def _segment_regex(pattern: str) -> str:
    parts = []
    for segment in pattern.split("/"):
        if segment == "**":
            parts.append(r".+")
        elif segment == "*":
            parts.append(r"[^/:]+")
        else:
            parts.append(re.escape(segment))
    return "/".join(parts)


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """`/v1/{name=jobs/*}:start` -> regex with one named group per variable."""
    names: list[str] = []
    regex = ""
    last = 0
    for match in VARIABLE.finditer(template):
        regex += re.escape(template[last : match.start()])
        field_path, pattern = match.group(1), match.group(2) or "*"
        group = f"v{len(names)}"
        names.append(field_path)
        regex += f"(?P<{group}>{_segment_regex(pattern)})"
        last = match.end()
    regex += re.escape(template[last:])
    return re.compile(f"^{regex}$"), tuple(names)


def _bindings(rule: http_pb2.HttpRule) -> Iterable[tuple[str, str, str]]:
    kind = rule.WhichOneof("pattern")
    if kind == "custom":
        yield rule.custom.kind.upper(), rule.custom.path, rule.body
    elif kind is not None:
        yield kind.upper(), getattr(rule, kind), rule.body
    for extra in rule.additional_bindings:
        yield from _bindings(extra)


def routes_for(service: descriptor.ServiceDescriptor, upstream: str) -> list[Route]:
    """Every HTTP binding of `service`; RPCs without an annotation get none (internal)."""
    out: list[Route] = []
    for method in service.methods:
        options = method.GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            continue
        rule = options.Extensions[annotations_pb2.http]
        for verb, template, body in _bindings(rule):
            regex, variables = compile_template(template)
            out.append(
                Route(verb, template, regex, variables, body, service.full_name, method, upstream)
            )
    return out


class RouteTable:
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)

    def match(self, verb: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for `verb path` and its variables, or None. 405 vs 404 is the caller's."""
        for route in self.routes:
            if route.verb != verb:
                continue
            found = route.regex.match(path)
            if found is not None:
                values = {name: found.group(f"v{i}") for i, name in enumerate(route.variables)}
                return route, values
        return None

    def path_exists(self, path: str) -> bool:
        return any(route.regex.match(path) for route in self.routes)

    def allowed(self, path: str) -> list[str]:
        """The verbs some route serves at `path` (a 405's `Allow` header)."""
        return sorted({route.verb for route in self.routes if route.regex.match(path)})


def message_class(desc: descriptor.Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(desc)


def _set_path(msg: Message, field_path: str, raw: str | list[str]) -> None:
    """Set a (possibly nested) scalar field from its string form, as grpc-gateway does."""
    parts = field_path.split(".")
    target = msg
    for part in parts[:-1]:
        field = target.DESCRIPTOR.fields_by_name.get(part)
        if field is None or field.message_type is None:
            raise InvalidArgument(f"unknown parameter {field_path!r}")
        target = getattr(target, part)
    field = target.DESCRIPTOR.fields_by_name.get(parts[-1])
    if field is None:
        # Accept the JSON (lowerCamel) name too.
        by_json = {f.json_name: f for f in target.DESCRIPTOR.fields}
        field = by_json.get(parts[-1])
    if field is None:
        raise InvalidArgument(f"unknown parameter {field_path!r}")
    values = raw if isinstance(raw, list) else [raw]
    if field.message_type is not None and field.message_type.full_name == FIELD_MASK:
        getattr(target, field.name).paths.extend(
            field_mask_paths(values, _mask_resource(target.DESCRIPTOR))
        )
        return
    if field.message_type is not None:
        raise InvalidArgument(f"parameter {field_path!r} cannot be given in the URL")
    is_repeated = field.is_repeated
    if not is_repeated and len(values) > 1:
        raise InvalidArgument(f"parameter {field_path!r} is given more than once")
    parsed = []
    for value in values:
        try:
            parsed.append(_scalar(field, value))
        except ValueError as exc:
            raise InvalidArgument(f"parameter {field_path!r}: {exc}") from exc
    if is_repeated:
        getattr(target, field.name).extend(parsed)
    else:
        setattr(target, field.name, parsed[0])


# Numbers in the URL as JSON writes them (and proto3 JSON's names for the special doubles).
# Python's int() and float() also take `1_000`, surrounding spaces and other scripts' digits
# (Arabic-Indic and others), which no client means as a number.
_INTEGER = re.compile(r"-?[0-9]{1,40}")
_DECIMAL = re.compile(r"-?[0-9]{1,400}(\.[0-9]{1,400})?([eE][+-]?[0-9]{1,4})?|NaN|-?Infinity")


def _scalar(field: Any, value: str) -> object:
    t = field.type
    fd = descriptor.FieldDescriptor
    if t == fd.TYPE_STRING:
        return value
    if t == fd.TYPE_BOOL:
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise ValueError(f"{value!r} is not a boolean")
    if t == fd.TYPE_ENUM:
        enum_value = field.enum_type.values_by_name.get(value)
        if enum_value is None:
            # Names only, as the OpenAPI document declares (a number is not a documented value).
            allowed = ", ".join(v.name for v in field.enum_type.values)
            raise ValueError(f"{value!r} is not one of {allowed}")
        return enum_value.number
    if t in (fd.TYPE_DOUBLE, fd.TYPE_FLOAT):
        if not _DECIMAL.fullmatch(value):
            raise ValueError(f"{value!r} is not a number")
        return float(value)
    if t == fd.TYPE_BYTES:
        import base64

        return base64.b64decode(value)
    if not _INTEGER.fullmatch(value):
        raise ValueError(f"{value!r} is not an integer")
    number = int(value)
    if t in (fd.TYPE_INT32, fd.TYPE_SINT32, fd.TYPE_SFIXED32) and not -(2**31) <= number < 2**31:
        raise ValueError(f"{value!r} is out of range")
    if t in (fd.TYPE_UINT32, fd.TYPE_FIXED32) and not 0 <= number < 2**32:
        raise ValueError(f"{value!r} is out of range")
    if t in (fd.TYPE_INT64, fd.TYPE_SINT64, fd.TYPE_SFIXED64) and not -(2**63) <= number < 2**63:
        raise ValueError(f"{value!r} is out of range")
    if t in (fd.TYPE_UINT64, fd.TYPE_FIXED64) and not 0 <= number < 2**64:
        raise ValueError(f"{value!r} is out of range")
    return number


# One field path of a mask, in either spelling: `display_name` (proto) or `displayName` (JSON).
_MASK_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}(\.[A-Za-z][A-Za-z0-9_]{0,63}){0,7}")
_UPPER = re.compile(r"[A-Z]")


def field_mask_paths(
    values: Sequence[str], resource: descriptor.Descriptor | None = None
) -> list[str]:
    """The snake_case paths of an `update_mask` given as `a,b` (one or more parameters).

    AIP-161 masks name proto fields; the JSON mapping spells them lowerCamel. Both are
    accepted (the API's own messages use snake_case), unlike `FieldMask.FromJsonString`,
    which raises on an underscore. Below a map or a Struct of `resource` (the message the
    mask updates) a path names a key, kept as given: `values.invoiceNumber` was read as
    `values.invoice_number`, and a correction of a field `invoiceNumber` cleared the
    job's field `invoice_number` instead (or was refused when it had none)."""
    paths: list[str] = []
    seen: set[str] = set()
    for value in values:
        for raw in value.split(","):
            path = raw.strip()
            if not path:
                continue
            if not _MASK_PATH.fullmatch(path):
                raise InvalidArgument(f"update_mask path {path[:80]!r} is not a field path")
            if path in seen:
                # The OpenAPI document says its items are unique (`uniqueItems`).
                raise InvalidArgument(f"update_mask names {path!r} more than once")
            seen.add(path)
            paths.append(_proto_mask_path(path, resource))
    return paths


def _proto_mask_path(path: str, resource: descriptor.Descriptor | None) -> str:
    parts: list[str] = []
    target = resource
    keys = False  # below a map or a Struct: keys, not fields
    for part in path.split("."):
        if keys:
            parts.append(part)
            continue
        field = None
        if target is not None:
            field = target.fields_by_name.get(part) or next(
                (f for f in target.fields if f.json_name == part), None
            )
        if field is None:
            parts.append(_UPPER.sub(lambda m: "_" + m.group(0).lower(), part))
            target = None
            continue
        parts.append(field.name)
        kind = field.message_type
        keys = kind is not None and (
            kind.GetOptions().map_entry or kind.full_name == "google.protobuf.Struct"
        )
        target = kind
    return ".".join(parts)


def _mask_resource(request: Any) -> descriptor.Descriptor | None:
    """The message an Update request's mask applies to (`request`, a request's DESCRIPTOR):
    its one message field besides the mask (`result`, `template`)."""
    found = [
        f.message_type
        for f in request.fields
        if f.message_type is not None
        and f.message_type.full_name != FIELD_MASK
        and not f.message_type.GetOptions().map_entry
    ]
    return found[0] if len(found) == 1 else None


def build_request(
    route: Route,
    path_values: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    body: object | None,
) -> Message:
    """The gRPC request for an HTTP call. Raises InvalidArgument on anything malformed."""
    msg = message_class(route.method.input_type)()
    if route.body:
        if body is None:
            body = {}
        try:
            if route.body == "*":
                if not isinstance(body, dict):
                    raise InvalidArgument("the request body must be a JSON object")
                field_names.check_body(body, route.method.input_type)
                json_format.ParseDict(_take_field_masks(body, msg), msg)
            else:
                field = route.method.input_type.fields_by_name[route.body]
                if field.message_type is not None:
                    field_names.check_body(body, field.message_type)
                json_format.ParseDict({field.json_name: body}, msg)
        except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
            # ParseDict raises ParseError for most bad input, but not for every type it meets.
            raise InvalidArgument(f"invalid request body: {str(exc)[:300]}") from exc
    grouped: dict[str, list[str]] = {}
    for key, value in query:
        grouped.setdefault(key, []).append(value)
    for field_path, value in path_values.items():
        _set_path(msg, field_path, value)
    if route.body != "*":
        field_names.check_query(
            (k for k in grouped if k not in path_values and k != "access_token"),
            route.method.input_type,
        )
        for key, values in grouped.items():
            if key in path_values or key == "access_token":
                continue
            if route.body and key.split(".")[0] == route.body:
                raise InvalidArgument(f"parameter {key!r} belongs in the request body")
            _set_path(msg, key, values)
    return msg


def _take_field_masks(body: dict[str, Any], msg: Message) -> dict[str, Any]:
    """`body` without its top-level field masks, which are set on `msg` in either spelling."""
    rest = dict(body)
    for field in msg.DESCRIPTOR.fields:
        if field.message_type is None or field.message_type.full_name != FIELD_MASK:
            continue
        for key in (field.name, field.json_name):
            if isinstance(rest.get(key), str):
                getattr(msg, field.name).paths.extend(
                    field_mask_paths([rest.pop(key)], _mask_resource(msg.DESCRIPTOR))
                )
    return rest


def to_json(msg: Message) -> dict[str, object]:
    """The reply's proto3 JSON form (what json_format.MessageToDict writes, faster)."""
    result: dict[str, object] = message_to_dict(msg)
    return result
