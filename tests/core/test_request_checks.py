"""core.request_checks on messages directly: the rules, and what each rule leaves alone."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2

from bytereview.core import InvalidArgument, request_checks
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb


def test_internal_requests_lose_their_nul_characters_and_keep_their_enums() -> None:
    # The workers' batches answer an unreadable report on its own; their servicer checks.
    # Their text comes from documents anyone uploads: cleaned, not refused.
    report = worker_pb.ReportFileAnalysisRequest(
        file="f", error="a\x00b", status=pb.SourceFile.READY
    )
    with pytest.raises(InvalidArgument, match="error must not contain a NUL"):
        request_checks.check(report, public=True)
    report.status = 42  # type: ignore[assignment]
    request_checks.check(report, public=False)
    assert (report.error, report.status) == ("ab", 42)
    result = worker_pb.ReportTaskResultRequest(
        task="t", extractor="x\x00", value_sources={"to\x00tal": "p\x00age"}
    )
    result.assessments["f\x00"].evidence.quote = "q\x00"
    result.values.update({"v": "stays\x00"})  # JSON escapes it: Struct values are left alone
    request_checks.check(result, public=False)
    assert result.extractor == "x"
    assert dict(result.value_sources) == {"total": "page"}
    assert result.assessments["f"].evidence.quote == "q"
    assert result.values["v"] == "stays\x00"


def test_lists_inside_structs_are_walked_and_null_values_are_not_enums() -> None:
    values = struct_pb2.Struct()
    values.update({"a": [None, 1, ["x", {"b": "ok"}]]})
    request = jobs_pb.UpdateResultRequest(result=pb.Result(name="r", values=values))
    request_checks.check(request, public=True)
    values.update({"a": [None, 1, ["x", {"b": "n\x00"}]]})
    request.result.values.CopyFrom(values)
    with pytest.raises(InvalidArgument, match=r"result\.values\.fields\['a'\]"):
        request_checks.check(request, public=True)


def test_undecodable_bytes_name_the_request_type() -> None:
    parse = request_checks.tolerant(jobs_pb.GetJobRequest.FromString)
    assert parse is not None
    assert parse(b"\x0a\x03job") == jobs_pb.GetJobRequest(name="job")
    with pytest.raises(InvalidArgument, match=r"not a valid bytereview\.jobs\.v1\.GetJobRequest"):
        request_checks.check(parse(b"\xff\xff\xff"), public=False)


def test_a_list_longer_than_any_method_takes_is_refused_before_its_entries_are_read() -> None:
    declared = jobs_pb.DeclaredFile(path="a.pdf", size_bytes=1)
    request = jobs_pb.CreateJobRequest(files=[declared] * request_checks.MAX_LIST_ENTRIES)
    request_checks.check(request, public=True)
    request.files.append(declared)
    with pytest.raises(InvalidArgument, match="files holds 10001 entries; at most 10000"):
        request_checks.check(request, public=True)
    request_checks.check(request, public=False)  # internal: the servicer's own batch limits
