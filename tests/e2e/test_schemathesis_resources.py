"""Schemathesis on real resources: the operations that take a job, a file, a result or a
template, with the ids of ones that exist (schemathesis's `[parameters]`).

test_schemathesis.py fuzzes with generated ids: nearly every call is a 404 before the
server reads the rest of the request, so what a route answers for an existing resource was
never compared with the document. With real ids it was not: renderPage refused pages and
widths the document allowed and answered image/png where it said octet-stream, exports
answered text/csv, an API key was created from no body at all though the body is required,
and `"taskMode": false` or `null` was taken though the document did not allow them (those
are tests/gateway/test_hostile_requests.py's now)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from bytereview.core import DEV_TOKEN
from tests.e2e.conftest import Platform, wait_status
from tests.e2e.test_schemathesis import schemathesis
from tests.pdfs import text_pdf

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}

# Operations on existing resources that change nothing for good or only add (deletes would
# take the resources from the operations after them). Not here: those whose bodies name
# things of the resource the document cannot list (PlanTasks' and ConfigureJob's folder rules
# name the job's folders, UpdateResult's values its fields): a generated name is refused as
# INVALID_ARGUMENT, which schemathesis counts as a schema-valid request rejected.
OPERATIONS = [
    "JobService_GetJob",
    "JobService_GetJobProgress",
    "JobService_ListFiles",
    "JobService_ListResults",
    "JobService_GetResult",
    "JobService_ListJobEvents",
    "JobService_ListTasks",
    "JobService_ExportResults",
    "JobService_ListReviewItems",
    "JobService_AcceptReviewItem",
    "JobService_ListResultVersions",
    "JobService_GetResultVersion",
    "IngestService_RenderPage",
    "IngestService_InspectArchive",
    "ExtractService_PreviewExtraction",
    "TemplateService_GetTemplate",
    "TemplateService_ListTemplateVersions",
    "TemplateService_GetTemplateVersion",
    "TemplateService_ListGoldenDocuments",
    "UserService_CreateApiKey",
    "UserService_ListApiKeys",
]


def _resources(url: str) -> dict[str, str]:
    """A finished job of one PDF, its file and result, and a template: path parameters."""
    pdf = text_pdf(["Invoice 7", "Total: 30.90"])
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        created = client.post(
            "/v1/jobs", json={"files": [{"path": "a.pdf", "sizeBytes": len(pdf)}]}
        )
        assert created.status_code == 200, created.text
        job = created.json()["job"]["name"]
        assert httpx.put(created.json()["uploadTargets"][0]["url"], content=pdf).status_code == 200
        assert client.post(f"/v1/{job}:finalizeUploads", json={}).status_code == 200
        assert wait_status(client, job, {"READY"}) == "READY"
        fields = [{"name": "total", "dataType": "currency"}]
        assert client.post(f"/v1/{job}:configure", json={"fields": fields}).status_code == 200
        assert client.post(f"/v1/{job}:start", json={}).status_code == 200
        assert wait_status(client, job, {"COMPLETED"}) == "COMPLETED"
        result = client.get(f"/v1/{job}/results").json()["results"][0]
        template = client.post("/v1/templates", json={"displayName": "t", "fields": fields})
        assert template.status_code == 200, template.text
    return {
        "job": job.split("/")[1],
        "file": result["files"][0].rsplit("/", 1)[1],
        "result": result["name"].rsplit("/", 1)[1],
        "template": template.json()["name"].split("/")[1],
        "version": "1",
        "value": "total",
        "user": "me",
    }


def test_operations_on_existing_resources_honour_the_document(
    platform: Platform, tmp_path: Path
) -> None:
    ids = _resources(platform.url)
    config = tmp_path / "schemathesis.toml"
    # If-Match (AcceptReviewItem's) is "any version": schemathesis drops a header's pattern
    # that needs a character such as `"` and sends `If-Match: 0` as schema-valid, which is
    # refused (400: no etag). tests/gateway/test_if_match.py tests the header.
    config.write_text(
        "[parameters]\n"
        + "".join(f'"path.{name}" = "{value}"\n' for name, value in ids.items())
        + '"header.If-Match" = "*"\n'
    )
    ops = [arg for op in OPERATIONS for arg in ("--include-operation-id", op)]
    started = time.monotonic()
    output = schemathesis(
        platform.url,
        tmp_path,
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        "10",
        *ops,
        config=config,
    )
    assert f"Tested: {len(OPERATIONS)}" in output, output[-4000:]
    # The calls reached the resources: not every answer a 404.
    assert "repeatedly returned 404" not in output, output[-4000:]
    assert time.monotonic() - started < 400
