"""An OpenAPI 3 document generated from the proto descriptors behind the route table.

What the protos say is read from them: types, enums, `field_behavior` (REQUIRED fields are
required and non-empty, OUTPUT_ONLY and IDENTIFIER fields are read-only in requests) and the
`google.api.resource` patterns that resource references must match. What the services enforce
beyond that (id syntax, lengths, ranges, counts, formats) is one explicit table, `rules`,
built from the same limits the services check, so a schema-valid request is one the server
accepts (unless the resource's state or existence says otherwise: 404, 409)."""

from __future__ import annotations

import re
from typing import Any

from google.api import field_behavior_pb2, resource_pb2
from google.protobuf import descriptor

from bytereview.core import limits
from bytereview.core.datatypes import DATA_TYPES
from bytereview.core.fields import FIELD_NAME
from bytereview.core.media_types import MEDIA_TYPE
from bytereview.core.unsafe_text import UNSAFE_IN_NAMES
from gateway.preconditions import etag_resource
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
# The error body of every 4xx/5xx (gateway/errors.py): a message, and the request id as a
# google.rpc.RequestInfo detail (AIP-193), so a user can quote it.
ERROR = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "status", "message", "details"],
            "properties": {
                "code": {"type": "integer"},
                "status": {"type": "string"},
                "message": {"type": "string", "minLength": 1},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["@type"],
                        "properties": {
                            "@type": {"type": "string"},
                            "requestId": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}

# ---------------------------------------------------------------------------------------------
# What the protos cannot express: the one table of rules the services enforce.
# ---------------------------------------------------------------------------------------------
ID = "[0-9a-f]{32}"  # every resource id: services/jobs/domain/names.py
VERSION = "[1-9][0-9]{0,8}"  # version numbers 1, 2, 3 ...: services/jobs/domain/names.py
# A path segment variable of a resource pattern -> what it matches (`me` is the caller; a
# review item's `values/{value}` is a field name).
_SEGMENT_IDS = {
    "user": f"(?:{ID}|me)",
    "version": VERSION,
    "value": FIELD_NAME.pattern.removeprefix("^").removesuffix("$"),
}
MAX_PAGE_SIZE = 1000  # services/jobs/domain/names.py; the ingest service's limit is the same
MAX_AGE_SECONDS = 100 * 366 * 24 * 3600  # services/jobs/domain/admin/operations.py
# Opaque: only a `nextPageToken` the server handed out (or none: the first page) is valid.
# The format names that, so clients (and schemathesis) know not to make one up; the syntax is
# the server's to change (services/jobs/domain/names.py), so it is described, not declared.
PAGE_TOKEN: dict[str, Any] = {
    "type": "string",
    "format": "page-token",
    "description": "A `nextPageToken` from the previous page, as given (opaque; at most 512 "
    "URL-safe characters), or empty for the first page",
}
# What `str.strip()` removes (`str.isspace`), spelled out: `\s` differs between regex engines.
_SPACES = r"[\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# A declared file path (services/jobs/domain/paths.py refuses control characters and the
# bidi characters that make a name display as another (core/unsafe_text.py), `..` segments
# and paths with no name in them). Declared a little narrower than the server takes:
# segments separated by `/`, each starting with a character that is not a dot or a space.
# (Without lookarounds: generators then make matching values directly, not by filtering.)
_UNSAFE = UNSAFE_IN_NAMES.pattern[1:-1]
_SEGMENT = rf"[^{_UNSAFE}{_SPACES[1:-1]}/\\.][^{_UNSAFE}/\\]*"
PATH_PATTERN = f"^{_SEGMENT}(?:/{_SEGMENT})*$"
# No string a client sends may hold U+0000 (core/request_checks.py refuses it: PostgreSQL's
# text cannot store it). Said on every string, so a generator does not send one as valid.
NO_NUL = "^[^\\x00]*$"
# Text the server strips before checking it is there: one character `str.strip` keeps,
# and no NUL anywhere.
NOT_BLANK = f"^[^\\x00]*[^\\x00{_SPACES[1:-1]}][^\\x00]*$"


# A result's etag as the jobs service gives it (services/jobs/domain/results/etags.py): its
# version, quoted; anything else is refused (400). In a body, empty is none.
ETAG = '"[1-9][0-9]{0,9}"'
_ETAG_FIELD = {"pattern": f"^(?:{ETAG})?$"}


def _text(max_length: int, *, required: bool = False) -> dict[str, Any]:
    rule: dict[str, Any] = {"maxLength": max_length}
    if required:
        rule["pattern"] = NOT_BLANK
    return rule


def rules(*, max_upload_bytes: int) -> dict[str, dict[str, Any]]:
    """Schema keywords per proto field (`package.Message.field`) or message, beyond the protos."""
    p = "bytereview.jobs.v1."
    fields_list = {"maxItems": limits.MAX_FIELDS, "x-unique-by": "name (case-insensitive)"}
    return {
        # Bodies.
        f"{p}DeclaredFile.path": {"pattern": PATH_PATTERN, "maxLength": limits.MAX_PATH},
        # Empty (unknown) or a media type: it becomes the upload's Content-Type.
        f"{p}DeclaredFile.content_type": {
            "pattern": f"^(?:{MEDIA_TYPE.pattern})?$",
            "maxLength": limits.MAX_MEDIA_TYPE,
        },
        f"{p}DeclaredFile.size_bytes": {
            "type": "integer",
            "minimum": 1,
            "maximum": max_upload_bytes,
        },
        f"{p}CreateJobRequest.files": {
            "maxItems": limits.MAX_FILES_PER_JOB,
            "x-unique-by": "path",
        },
        f"{p}CreateJobRequest.display_name": _text(limits.MAX_DISPLAY_NAME),
        f"{p}CreateJobRequest.request_id": _text(limits.MAX_REQUEST_ID),
        f"{p}StartJobRequest.request_id": _text(limits.MAX_REQUEST_ID),
        f"{p}ConfigureJobRequest.display_name": _text(limits.MAX_DISPLAY_NAME),
        f"{p}ConfigureJobRequest.fields": fields_list,
        # Fields, or a template to copy them from.
        f"{p}ConfigureJobRequest": {
            "anyOf": [
                {
                    "required": ["fields"],
                    "properties": {"fields": {"type": "array", "minItems": 1}},
                },
                {
                    "required": ["template"],
                    "properties": {"template": {"type": "string", "minLength": 1}},
                },
            ]
        },
        # What to re-run: files, results (optionally only some fields), or the failed tasks.
        f"{p}RerunJobRequest": {
            "anyOf": [
                {
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "minItems": 1},
                        "fields": {"maxItems": 0},
                    },
                },
                {
                    "required": ["failedTasks"],
                    "properties": {"failedTasks": {"enum": [True]}, "fields": {"maxItems": 0}},
                },
                {
                    "required": ["results"],
                    "properties": {"results": {"type": "array", "minItems": 1}},
                },
            ]
        },
        f"{p}RerunJobRequest.files": {"maxItems": limits.MAX_FILES_PER_JOB},
        f"{p}ListReviewItemsRequest.confidence_below": {"minimum": 0, "maximum": 1},
        f"{p}RerunJobRequest.results": {"maxItems": limits.MAX_FILES_PER_JOB},
        f"{p}RerunJobRequest.fields": {"maxItems": limits.MAX_FIELDS},
        f"{p}JobField.name": {"pattern": FIELD_NAME.pattern},
        f"{p}JobField.data_type": {"enum": [t.id for t in DATA_TYPES]},
        f"{p}JobField.instruction": _text(limits.MAX_INSTRUCTION),
        f"{p}Template.display_name": _text(limits.MAX_DISPLAY_NAME, required=True),
        f"{p}Template.fields": {**fields_list, "minItems": 1},
        f"{p}Template": {"required": ["fields"]},
        f"{p}ApiKey.display_name": _text(limits.MAX_DISPLAY_NAME),
        f"{p}SyncCurrentUserRequest.display_name": _text(limits.MAX_DISPLAY_NAME),
        f"{p}Result.etag": _ETAG_FIELD,
        f"{p}AcceptReviewItemRequest.etag": _ETAG_FIELD,
        f"{p}RevertResultRequest.etag": _ETAG_FIELD,
        f"{p}RetryDeadLetterRequest.reason": _text(500),
        f"{p}DiscardDeadLetterRequest.reason": _text(500),
        "bytereview.extract.v1.PreviewExtractionRequest.fields": fields_list,
        # Query parameters.
        "page_size": {"minimum": 0, "maximum": MAX_PAGE_SIZE},
        "page_token": PAGE_TOKEN,
        f"{p}WatchJobRequest.after_sequence": {"pattern": "^[0-9]{1,18}$"},
        # Empty (or left out): csv.
        f"{p}ExportResultsRequest.format": {"enum": ["csv", "json", "xlsx", ""]},
        # services/ingest/render.py: a 1-based page (0 means 1); a width of 100 to 2400
        # pixels (0 means 1200).
        "bytereview.ingest.v1.RenderPageRequest.page": {"minimum": 0},
        "bytereview.ingest.v1.RenderPageRequest.width": {
            "anyOf": [{"enum": [0]}, {"minimum": 100, "maximum": 2400}]
        },
        f"{p}ListAllJobsRequest.min_age_seconds": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_AGE_SECONDS,
        },
    }


# What a download (a stream of google.api.HttpBody) answers, per operation: the backends set
# the media type (services/ingest/server.py: RenderPage; services/jobs/domain/export: one per
# format). Any other download is declared as bytes of no particular type.
_BYTES: dict[str, Any] = {"type": "string", "format": "binary"}
DOWNLOADS: dict[str, dict[str, Any]] = {
    "IngestService_RenderPage": {"image/png": {"schema": _BYTES}},
    "JobService_ExportResults": {
        "text/csv": {"schema": _BYTES},
        "application/json": {"schema": {"type": "object"}},
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": _BYTES},
    },
}

# The fields an update mask may name (AIP-134), per request; either spelling is accepted.
UPDATABLE: dict[str, tuple[str, ...]] = {
    "bytereview.jobs.v1.UpdateTemplateRequest": ("display_name", "description", "fields"),
    "bytereview.jobs.v1.UpdateResultRequest": ("values",),
}

# OpenAPI links (stateful use of the API): operation -> where the new resource's name is in
# its answer, and the operations that take that resource. `#regex:` (a schemathesis extension
# of runtime expressions) takes the id out of the name.
_JOB_ID = "$response.body#/{at}#regex:^jobs/([^/]+)$"
LINKS: dict[str, tuple[str, dict[str, dict[str, str]]]] = {
    "JobService_CreateJob": (
        "job/name",
        {
            op: {"job": _JOB_ID}
            for op in (
                "JobService_GetJob",
                "JobService_GetJobProgress",
                "JobService_ConfigureJob",
                "JobService_FinalizeUploads",
                "JobService_StartJob",
                "JobService_CancelJob",
                "JobService_ListFiles",
                "JobService_ListResults",
                "JobService_ListJobEvents",
                # Not DeleteJob: with it in the group, schemathesis 4.32's stateful phase
                # followed no link of the job at all (all scenarios stayed on CreateJob).
            )
        },
    ),
    "JobService_ConfigureJob": (
        "name",
        {op: {"job": _JOB_ID} for op in ("JobService_GetJob", "JobService_StartJob")},
    ),
    "TemplateService_CreateTemplate": (
        "name",
        {
            op: {"template": "$response.body#/{at}#regex:^templates/([^/]+)$"}
            for op in (
                "TemplateService_GetTemplate",
                "TemplateService_UpdateTemplate",
                "TemplateService_DeleteTemplate",
            )
        },
    ),
    "UserService_CreateApiKey": (
        "name",
        {
            "UserService_DeleteApiKey": {
                "user": "$response.body#/{at}#regex:^users/([^/]+)/",
                "apiKey": "$response.body#/{at}#regex:/apiKeys/([^/]+)$",
            }
        },
    ),
}

_ANSWERS = {
    "400": "The request is malformed: the message says which part",
    "401": "No credential, or one that is not valid",
    "403": "The credential is valid but may not make this call (e.g. the admin role is missing)",
    "404": "No such resource for this caller",
    "409": "Not allowed in the resource's current state (the message says why), or the "
    "resource already exists",
    "429": "Too many requests (or open streams, or resources) for this caller",
}
_STALE_IF_MATCH = "If-Match named an etag the resource no longer has: read it again"


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


def _behaviors(f: descriptor.FieldDescriptor) -> set[int]:
    options = f.GetOptions()
    return set(options.Extensions[field_behavior_pb2.field_behavior])


def _resource_regex(pattern: str) -> str:
    """`jobs/{job}/files/{file}` -> a regex of the names it describes."""
    return re.sub(r"\{(\w+)\}", lambda m: _SEGMENT_IDS.get(m.group(1), ID), pattern)


class _Schemas:
    def __init__(self, table: dict[str, dict[str, Any]]) -> None:
        self.components: dict[str, Any] = {}
        self._rules = table
        self._resources: dict[str, list[str]] = {}

    def ref(self, desc: descriptor.Descriptor) -> dict[str, Any]:
        if desc.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[desc.full_name])
        name = desc.full_name
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursion-safe
            self.components[name] = self.message(desc)
        return {"$ref": f"#/components/schemas/{name}"}

    def _learn_resources(self, desc: descriptor.Descriptor) -> None:
        # The file's own resources and those of the files it imports (a request in
        # jobs_service.proto names resources of resources.proto).
        for file in (desc.file, *desc.file.dependencies):
            for message in file.message_types_by_name.values():
                resource = message.GetOptions().Extensions[resource_pb2.resource]
                if resource.type:
                    self._resources[resource.type] = list(resource.pattern)

    def message(
        self, desc: descriptor.Descriptor, *, leave_out: frozenset[str] | set[str] = frozenset()
    ) -> Any:
        if desc.GetOptions().map_entry:
            return {"type": "object"}
        props: dict[str, Any] = {}
        required: list[str] = []
        for f in desc.fields:
            if f.name in leave_out:
                continue
            schema = self.field(f)
            behaviors = _behaviors(f)
            if behaviors & {field_behavior_pb2.OUTPUT_ONLY, field_behavior_pb2.IDENTIFIER}:
                # Set by the server (or, for a name, by the URL): not sent in requests.
                schema["readOnly"] = True
            if field_behavior_pb2.REQUIRED in behaviors:
                required.append(f.json_name)
                if f.is_repeated:
                    schema["minItems"] = 1
                elif f.type == FD.TYPE_STRING:
                    schema["minLength"] = 1
            else:
                # proto3 JSON reads `null` as the field's default, and the gateway accepts it.
                schema["nullable"] = True
                if "enum" in schema:
                    # OpenAPI 3.0.3: `nullable` does not add null to an `enum`; it is listed.
                    schema["enum"] = [*schema["enum"], None]
            props[f.json_name] = schema
        out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            out["required"] = required
        extra = dict(self._rules.get(desc.full_name, {}))
        if "required" in extra:
            out["required"] = sorted({*required, *extra.pop("required")})
            for name in out["required"]:
                props[name].pop("nullable", None)
        out.update(extra)
        return out

    def field(self, f: descriptor.FieldDescriptor) -> dict[str, Any]:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            value = f.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        single = self._single(f)
        if f.is_repeated:
            out: dict[str, Any] = {"type": "array", "items": single}
            out.update(self._rules.get(f.full_name, {}))
            return out
        return single

    def _single(self, f: descriptor.FieldDescriptor) -> dict[str, Any]:
        if f.message_type is not None:
            return self.ref(f.message_type)
        if f.enum_type is not None:
            schema: dict[str, Any] = {
                "type": "string",
                "enum": [v.name for v in f.enum_type.values],
            }
        else:
            schema = dict(_SCALARS[f.type])
            reference = f.GetOptions().Extensions[resource_pb2.resource_reference]
            behaviors = _behaviors(f)
            sent = not behaviors & {field_behavior_pb2.OUTPUT_ONLY, field_behavior_pb2.IDENTIFIER}
            if reference.type and sent and f.containing_type is not None:
                self._learn_resources(f.containing_type)
                patterns = self._resources.get(reference.type)
                if patterns:
                    # An optional reference may be left empty; a required one (or a list's item)
                    # names a resource.
                    names = "|".join(_resource_regex(p) for p in patterns)
                    required = field_behavior_pb2.REQUIRED in behaviors or f.is_repeated
                    optional = "" if required else "?"
                    schema["pattern"] = f"^(?:{names}){optional}$"
        if not f.is_repeated:
            schema.update(self._rules.get(f.full_name, {}))
        if f.type == FD.TYPE_STRING and f.enum_type is None:
            # Every other pattern here already leaves NUL out (ids, paths, field names).
            schema.setdefault("pattern", NO_NUL)
        return schema


def _field_at(desc: descriptor.Descriptor | None, path: str) -> descriptor.FieldDescriptor | None:
    field = None
    for part in path.split("."):
        field = desc.fields_by_name.get(part) if desc is not None else None
        if field is None:
            return None
        desc = field.message_type
    return field


def _path_schema(name: str) -> dict[str, Any]:
    return {"type": "string", "pattern": f"^{_SEGMENT_IDS.get(name, ID)}$"}


def _query_schema(
    f: descriptor.FieldDescriptor, schemas: _Schemas, table: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    if f.message_type is not None:  # a field mask
        return _mask_schema(f.containing_type.full_name if f.containing_type else "")
    schema = schemas.field(f)
    if f.is_repeated:
        return schema
    if f.type in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        schema.update({"minimum": -(2**31), "maximum": 2**31 - 1})
    elif schema.get("type") == "string" and schema.get("format") in ("int64", "uint64"):
        schema["pattern"] = "^-?[0-9]{1,19}$" if schema["format"] == "int64" else "^[0-9]{1,20}$"
    schema.update(table.get(f.name, {}))
    if (override := table.get(f.full_name)) is not None:
        if "type" in override:
            schema.pop("format", None)
            schema.pop("pattern", None)
        if "enum" in override:
            schema = {"type": "string"}
        schema.update(override)
    return schema


def _mask_schema(request: str) -> dict[str, Any]:
    """An update mask: the updatable fields, comma-separated (AIP-161)."""
    allowed = UPDATABLE.get(request, ())
    spellings = sorted({*allowed, *(_lower_camel(a) for a in allowed)})
    return {"type": "array", "items": {"type": "string", "enum": spellings}, "uniqueItems": True}


def _lower_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _operation(route: Route, schemas: _Schemas, table: dict[str, dict[str, Any]]) -> Any:
    input_desc = route.method.input_type
    params: list[dict[str, Any]] = [
        {"name": v, "in": "path", "required": True, "schema": _path_schema(v)}
        for v in openapi_template(route.template)[1]
    ]
    path_fields = {v.split(".")[0] for v in route.variables}
    if route.body != "*":
        skip = path_fields | ({route.body} if route.body else set())
        for f in input_desc.fields:
            if f.name in skip or (
                f.message_type is not None
                and f.message_type.full_name != "google.protobuf.FieldMask"
            ):
                continue
            param: dict[str, Any] = {
                "name": f.name,
                "in": "query",
                "required": False,
                "schema": _query_schema(f, schemas, table),
            }
            if f.message_type is not None:
                param.update({"style": "form", "explode": False})
            params.append(param)
    if (resource := etag_resource(route)) is not None:
        # gateway/preconditions.py: the header fills the call's etag.
        whose = resource or "resource"
        params.append(
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "description": f"The {whose}'s etag as read: refused (412) if it changed since",
                # `*` (any version) asks nothing.
                "schema": {"type": "string", "pattern": f"^(?:\\*|{ETAG})$"},
            }
        )
    error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR}"}}}
    errors = {status: {"description": text, "content": error} for status, text in _ANSWERS.items()}
    if resource is not None:
        errors["412"] = {"description": _STALE_IF_MATCH, "content": error}
    op: dict[str, Any] = {
        "operationId": f"{route.service.rsplit('.', 1)[-1]}_{route.method.name}",
        "tags": [route.service.rsplit(".", 1)[-1]],
        "parameters": params,
        "security": [{"bearer": []}, {"apiKey": []}],
        "responses": {
            **errors,
            "default": {"description": "An error", "content": error},
        },
    }
    if route.body:
        if route.body == "*":
            # The fields the URL carries are not repeated in the body.
            body_schema = schemas.message(input_desc, leave_out=path_fields)
        else:
            body_field = _field_at(input_desc, route.body)
            body_schema = schemas.field(body_field) if body_field else {"type": "object"}
        op["requestBody"] = {
            # A whole-request body (`*`) may be left out when none of its fields is required:
            # it reads as `{}` (AIP custom methods such as `:cancel` are called with none).
            # A body that is one field (a template, a result) is the resource: required.
            "required": route.body != "*"
            or bool(body_schema.get("required") or body_schema.get("anyOf")),
            "content": {"application/json": {"schema": body_schema}},
        }
    output = route.method.output_type
    if output.full_name == "google.api.HttpBody":
        content = DOWNLOADS.get(op["operationId"], {"application/octet-stream": {"schema": _BYTES}})
        ok = {"description": "File contents", "content": content}
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


def _add_links(paths: dict[str, dict[str, Any]]) -> None:
    ops = {op["operationId"]: op for verbs in paths.values() for op in verbs.values()}
    for source, (at, targets) in LINKS.items():
        ops[source]["responses"]["200"]["links"] = {
            target.split("_", 1)[1]: {
                "operationId": target,
                "parameters": {name: expr.format(at=at) for name, expr in params.items()},
            }
            for target, params in targets.items()
        }


def openapi_document(table: RouteTable, *, max_upload_bytes: int = 2 * 1024**3) -> dict[str, Any]:
    known = rules(max_upload_bytes=max_upload_bytes)
    schemas = _Schemas(known)
    paths: dict[str, dict[str, Any]] = {}
    for route in table.routes:
        path = openapi_template(route.template)[0]
        paths.setdefault(path, {})[route.verb.lower()] = _operation(route, schemas, known)
    _add_links(paths)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "ByteReview API",
            "version": "v1",
            "description": "REST transcoding of ByteReview's gRPC APIs (protos/bytereview).",
        },
        "paths": paths,
        "components": {
            "schemas": {**schemas.components, ERROR: ERROR_SCHEMA},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
