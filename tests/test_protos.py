"""The generated code matches the protos, and every public RPC has a REST mapping."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from google.api import annotations_pb2, client_pb2, resource_pb2
from google.protobuf.descriptor import MethodDescriptor

from bytereview.extract.v1 import extract_service_pb2
from bytereview.ingest.v1 import ingest_service_pb2
from bytereview.jobs.v1 import admin_service_pb2, jobs_service_pb2, worker_service_pb2

ROOT = Path(__file__).resolve().parent.parent


def _protos_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("protos_tool", ROOT / "tools" / "protos.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["protos_tool"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh() -> None:
    assert _protos_tool().stale_files() == [], "run `make proto` and commit the result"


def test_every_public_rpc_has_an_http_rule_and_internal_ones_none() -> None:
    public = [
        jobs_service_pb2.DESCRIPTOR.services_by_name[name]
        for name in ("JobService", "TemplateService", "UserService")
    ] + [
        ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"],
        extract_service_pb2.DESCRIPTOR.services_by_name["ExtractService"],
        admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"],
    ]
    for service in public:
        for method in service.methods:
            assert method.GetOptions().HasExtension(annotations_pb2.http), method.full_name
    internal = worker_service_pb2.DESCRIPTOR.services_by_name["JobWorkerService"]
    for method in internal.methods:
        assert not method.GetOptions().HasExtension(annotations_pb2.http), method.full_name


def _public_methods() -> list[MethodDescriptor]:
    services = [
        jobs_service_pb2.DESCRIPTOR.services_by_name[name]
        for name in ("JobService", "TemplateService", "UserService")
    ] + [
        ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"],
        extract_service_pb2.DESCRIPTOR.services_by_name["ExtractService"],
        admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"],
    ]
    return [method for service in services for method in service.methods]


RESOURCE_FIELDS = ("name", "parent", "file")


def test_resource_name_fields_say_which_resource_they_name() -> None:
    """googleapis style: a request's `name`/`parent`/`file` names its resource type."""
    checked = 0
    for method in _public_methods():
        for field in method.input_type.fields:
            if field.name not in RESOURCE_FIELDS or field.type != field.TYPE_STRING:
                continue
            options = field.GetOptions()
            assert options.HasExtension(resource_pb2.resource_reference), field.full_name
            ref = options.Extensions[resource_pb2.resource_reference]
            assert (ref.type or ref.child_type).startswith("bytereview.io/"), field.full_name
            checked += 1
    assert checked >= 20  # the loop really saw the public API


def test_methods_with_a_resource_name_have_a_method_signature() -> None:
    for method in _public_methods():
        fields = {f.name for f in method.input_type.fields}
        signatures = list(method.GetOptions().Extensions[client_pb2.method_signature])
        if fields & set(RESOURCE_FIELDS):
            assert signatures, method.full_name
        for signature in signatures:
            assert set(signature.split(",")) <= fields, (method.full_name, signature)
