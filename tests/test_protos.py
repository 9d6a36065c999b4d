"""The generated code matches the protos, and every public RPC has a REST mapping."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from google.api import annotations_pb2

from bytereview.extract.v1 import extract_service_pb2
from bytereview.ingest.v1 import ingest_service_pb2
from bytereview.jobs.v1 import jobs_service_pb2, worker_service_pb2

ROOT = Path(__file__).resolve().parent.parent


def _protos_tool():  # type: ignore[no-untyped-def]
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
    ]
    for service in public:
        for method in service.methods:
            assert method.GetOptions().HasExtension(annotations_pb2.http), method.full_name
    internal = worker_service_pb2.DESCRIPTOR.services_by_name["JobWorkerService"]
    for method in internal.methods:
        assert not method.GetOptions().HasExtension(annotations_pb2.http), method.full_name
