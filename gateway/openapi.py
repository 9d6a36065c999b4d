"""An OpenAPI 3 document generated from the proto descriptors behind the route table."""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import descriptor

from gateway.transcoder import VARIABLE, Route, RouteTable

FD = descriptor.FieldDescriptor
_SCALARS: dict[int, dict[str, Any]] = {
    FD.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FD.TYPE_FLOAT: {"type": "number", "format": "float"},
    FD.TYPE_INT64: {"type": "string", "format": "int64"},
    FD.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FD.TYPE_INT32: {"type": "integer", "format": "int32"},
    FD.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FD.TYPE_FIXED32: {"type": "integer", "format": "int64"},
    FD.TYPE_BOOL: {"type": "boolean"},
    FD.TYPE_STRING: {"type": "string"},
    FD.TYPE_BYTES: {"type": "string", "format": "byte"},
    FD.TYPE_UINT32: {"type": "integer", "format": "int64"},
    FD.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FD.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FD.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FD.TYPE_SINT64: {"type": "string", "format": "int64"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.Empty": {"type": "object"},
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "integer"},
                "status": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}


def openapi_template(template: str) -> tuple[str, list[str]]:
    """The path of an HTTP rule in OpenAPI's terms, and its path parameters.

    Each `*` of a variable's pattern is its own parameter: `/v1/{name=jobs/*}` is
    `/v1/jobs/{job}`, so GetJob and GetTemplate do not share `/v1/{name}` (OpenAPI allows one
    operation per path and verb)."""
    params: list[str] = []

    def expand(match: re.Match[str]) -> str:
        variable, pattern = match.group(1), match.group(2) or "*"
        segments = pattern.split("/")
        out = []
        for i, segment in enumerate(segments):
            if segment in ("*", "**"):
                before = segments[i - 1] if i > 0 else ""
                name = before[:-1] if before.endswith("s") else variable.replace(".", "_")
                # Collection ids read as singular parameters: jobs/{job}/files/{file}.
                while name in params:
                    name += "_"
                params.append(name)
                out.append("{" + name + "}")
            else:
                out.append(segment)
        return "/".join(out)

    return VARIABLE.sub(expand, template), params


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, desc: descriptor.Descriptor) -> dict[str, Any]:
        if desc.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[desc.full_name])
        name = desc.full_name
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursion-safe
            self.components[name] = self._message(desc)
        return {"$ref": f"#/components/schemas/{name}"}

    def _message(self, desc: descriptor.Descriptor) -> dict[str, Any]:
        if desc.GetOptions().map_entry:
            return {"type": "object"}
        # proto3 JSON reads `null` as the field's default, and the gateway accepts it.
        props = {f.json_name: {**self.field(f), "nullable": True} for f in desc.fields}
        return {"type": "object", "properties": props, "additionalProperties": False}

    def field(self, f: descriptor.FieldDescriptor) -> dict[str, Any]:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            value = f.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        single = self._single(f)
        if f.is_repeated:
            return {"type": "array", "items": single}
        return single

    def _single(self, f: descriptor.FieldDescriptor) -> dict[str, Any]:
        if f.message_type is not None:
            return self.ref(f.message_type)
        if f.enum_type is not None:
            return {"type": "string", "enum": [v.name for v in f.enum_type.values]}
        return dict(_SCALARS[f.type])


def _field_at(desc: descriptor.Descriptor | None, path: str) -> descriptor.FieldDescriptor | None:
    field = None
    for part in path.split("."):
        field = desc.fields_by_name.get(part) if desc is not None else None
        if field is None:
            return None
        desc = field.message_type
    return field


# What the services enforce, declared so clients (and schemathesis) know it up front.
ID_PATTERN = "^[0-9a-f]{32}$"  # every resource id: services/jobs/domain/names.py
USER_PATTERN = "^([0-9a-f]{32}|me)$"
MAX_PAGE_SIZE = 1000
# Query parameters with a narrower range than their proto type.
_QUERY_RANGES: dict[str, dict[str, Any]] = {
    "page_size": {"minimum": 0, "maximum": MAX_PAGE_SIZE},
    "after_sequence": {"pattern": "^[0-9]{1,18}$"},
    # Opaque: only a `nextPageToken` the server handed out is valid (unpadded base64url).
    "page_token": {"pattern": "^[A-Za-z0-9_-]{0,512}$"},
}
# String fields of one request whose values are a fixed set (the service checks the same).
_QUERY_ENUMS: dict[tuple[str, str], list[str]] = {
    ("ExportResultsRequest", "format"): ["csv", "json", "xlsx"],
}
_ANSWERS = {
    "400": "The request is malformed (the message says which part), or not allowed in the "
    "resource's current state",
    "401": "No credential, or one that is not valid",
    "404": "No such resource for this caller",
    "429": "Too many requests (or open streams) for this caller",
}


def _path_schema(name: str) -> dict[str, Any]:
    return {"type": "string", "pattern": USER_PATTERN if name == "user" else ID_PATTERN}


def _query_schema(f: descriptor.FieldDescriptor, base: dict[str, Any]) -> dict[str, Any]:
    schema = dict(base)
    if f.type in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        schema.update({"minimum": -(2**31), "maximum": 2**31 - 1})
    elif schema.get("type") == "string" and schema.get("format") in ("int64", "uint64"):
        schema["pattern"] = "^-?[0-9]{1,19}$" if schema["format"] == "int64" else "^[0-9]{1,20}$"
    schema.update(_QUERY_RANGES.get(f.name, {}))
    return schema


def _operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    input_desc = route.method.input_type
    params: list[dict[str, Any]] = [
        {"name": v, "in": "path", "required": True, "schema": _path_schema(v)}
        for v in openapi_template(route.template)[1]
    ]
    if route.body != "*":
        skip = {v.split(".")[0] for v in route.variables} | ({route.body} if route.body else set())
        for f in input_desc.fields:
            if f.name in skip or (
                f.message_type is not None
                and f.message_type.full_name != "google.protobuf.FieldMask"
            ):
                continue
            schema = schemas.field(f) if f.message_type is None else {"type": "string"}
            if not f.is_repeated:
                schema = _query_schema(f, schema)
            if (choices := _QUERY_ENUMS.get((input_desc.name, f.name))) is not None:
                schema = {"type": "string", "enum": choices}
            params.append({"name": f.name, "in": "query", "required": False, "schema": schema})
    op: dict[str, Any] = {
        "operationId": f"{route.service.rsplit('.', 1)[-1]}_{route.method.name}",
        "tags": [route.service.rsplit(".", 1)[-1]],
        "parameters": params,
        "security": [{"bearer": []}, {"apiKey": []}],
        "responses": {
            **{
                status: {
                    "description": text,
                    "content": {"application/json": {"schema": ERROR_SCHEMA}},
                }
                for status, text in _ANSWERS.items()
            },
            "default": {
                "description": "An error",
                "content": {"application/json": {"schema": ERROR_SCHEMA}},
            },
        },
    }
    if route.body:
        if route.body == "*":
            body_schema = schemas.ref(input_desc)
        else:
            body_field = _field_at(input_desc, route.body)
            body_schema = schemas.field(body_field) if body_field else {"type": "object"}
        op["requestBody"] = {
            # A whole-request body (`*`) may be left out: it reads as `{}` (AIP custom methods
            # such as `:cancel` are called with none) and the server validates its fields.
            # A body that is one field (a template, a result) is the resource: required.
            "required": route.body != "*",
            "content": {"application/json": {"schema": body_schema}},
        }
    output = route.method.output_type
    if output.full_name == "google.api.HttpBody":
        ok = {
            "description": "File contents",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    elif route.server_streaming:
        ok = {
            "description": "A stream of messages (SSE with Accept: text/event-stream, else NDJSON)",
            "content": {
                "text/event-stream": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": schemas.ref(output)},
            },
        }
    else:
        ok = {"description": "OK", "content": {"application/json": {"schema": schemas.ref(output)}}}
    op["responses"]["200"] = ok
    return op


def openapi_document(table: RouteTable) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in table.routes:
        path = openapi_template(route.template)[0]
        paths.setdefault(path, {})[route.verb.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "ByteReview API",
            "version": "v1",
            "description": "REST transcoding of ByteReview's gRPC APIs (protos/bytereview).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
