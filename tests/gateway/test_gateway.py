"""The REST gateway in front of the real jobs service: transcoding, errors, uploads, SSE."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from bytereview.core import DEV_TOKEN, Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from gateway import build_request, create_app, public_routes
from tests.pdfs import text_pdf

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


def test_every_annotated_rpc_gets_a_route() -> None:
    table = public_routes()
    names = {r.method.full_name for r in table.routes}
    assert "bytereview.jobs.v1.JobService.StartJob" in names
    assert "bytereview.ingest.v1.IngestService.InspectArchive" in names
    job = "jobs/" + "a" * 32
    cases = {
        ("POST", f"/v1/{job}:start"): "StartJob",
        ("GET", f"/v1/{job}"): "GetJob",
        ("GET", f"/v1/{job}/files"): "ListFiles",
        ("PATCH", f"/v1/{job}/results/{'b' * 32}"): "UpdateResult",
        ("DELETE", "/v1/templates/" + "c" * 32): "DeleteTemplate",
        ("POST", "/v1/users/me:sync"): "SyncCurrentUser",
        ("GET", f"/v1/{job}/files/{'d' * 32}:inspectArchive"): "InspectArchive",
    }
    for (verb, path), method in cases.items():
        found = table.match(verb, path)
        assert found is not None, (verb, path)
        assert found[0].method.name == method


def test_request_mapping_path_body_query() -> None:
    table = public_routes()
    found = table.match("PATCH", f"/v1/jobs/{'a' * 32}/results/{'b' * 32}")
    assert found is not None
    route, values = found
    msg = build_request(route, values, [("updateMask", "values.total")], {"values": {"total": 3}})
    assert isinstance(msg, jobs_pb.UpdateResultRequest)
    assert msg.result.name == f"jobs/{'a' * 32}/results/{'b' * 32}"
    assert list(msg.update_mask.paths) == ["values.total"]
    # Below `values` (a Struct) a mask names the job's own fields, spelt as the job spells
    # them: `values.invoiceNumber` was read as `values.invoice_number`, and a correction of
    # `invoiceNumber` cleared the job's `invoice_number`. Fields keep both spellings.
    for mask, paths in (
        ("values.invoiceNumber,values.Total", ["values.invoiceNumber", "values.Total"]),
        ("values.invoice_number", ["values.invoice_number"]),
        ("values", ["values"]),
    ):
        msg = build_request(route, values, [("updateMask", mask)], {"values": {}})
        assert isinstance(msg, jobs_pb.UpdateResultRequest)
        assert list(msg.update_mask.paths) == paths
    template = table.match("PATCH", "/v1/templates/" + "c" * 32)
    assert template is not None
    msg = build_request(*template, [("updateMask", "displayName,description")], {})
    assert isinstance(msg, jobs_pb.UpdateTemplateRequest)
    assert list(msg.update_mask.paths) == ["display_name", "description"]
    found = table.match("GET", "/v1/jobs")
    assert found is not None
    route, values = found
    listed = build_request(route, values, [("status", "READY"), ("page_size", "5")], None)
    assert isinstance(listed, jobs_pb.ListJobsRequest)
    assert (listed.status, listed.page_size) == (3, 5)


async def test_rest_flow_and_errors(client: httpx.AsyncClient) -> None:
    pdf = text_pdf(["Total: 5.00"])
    created = await client.post(
        "/v1/jobs", headers=AUTH, json={"files": [{"path": "a.pdf", "sizeBytes": len(pdf)}]}
    )
    assert created.status_code == 200, created.text
    body = created.json()
    job = body["job"]["name"]
    assert body["job"]["status"] == "PENDING_UPLOAD"  # enums as strings, JSON names

    # Upload through the signed URL: forged, oversized and valid.
    url = httpx.URL(body["uploadTargets"][0]["url"])
    forged = url.copy_set_param("max", "999999")
    assert (await client.put(str(forged), content=pdf)).status_code == 403
    too_big = await client.put(str(url), content=pdf + b"x" * 10)
    assert too_big.status_code == 413
    assert (await client.put(str(url), content=pdf)).status_code == 200
    assert (await client.post(f"/v1/{job}:finalizeUploads", headers=AUTH, json={})).json()[
        "status"
    ] == "ANALYZING"

    listed = await client.get(
        "/v1/jobs", headers=AUTH, params={"status": "ANALYZING", "pageSize": 1}
    )
    assert [j["name"] for j in listed.json()["jobs"]] == [job]
    assert (await client.get("/v1/jobs", headers=AUTH, params={"status": "READY"})).json().get(
        "jobs", []
    ) == []

    cases = [
        (client.get(f"/v1/jobs/{'0' * 32}", headers=AUTH), 404, "NOT_FOUND"),
        (client.get("/v1/jobs/not-an-id", headers=AUTH), 400, "INVALID_ARGUMENT"),
        (client.get("/v1/jobs", headers=AUTH, params={"pageSize": "ten"}), 400, "INVALID_ARGUMENT"),
        (client.get("/v1/jobs", headers=AUTH, params={"status": "BOGUS"}), 400, "INVALID_ARGUMENT"),
        (client.get("/v1/jobs", headers=AUTH, params={"nope": "1"}), 400, "INVALID_ARGUMENT"),
        (client.post("/v1/jobs", headers=AUTH, content=b"{not json"), 400, "INVALID_ARGUMENT"),
        (client.post("/v1/jobs", headers=AUTH, json={"files": "x"}), 400, "INVALID_ARGUMENT"),
        (client.post("/v1/jobs", headers=AUTH, json={"unknownField": 1}), 400, "INVALID_ARGUMENT"),
        (
            client.post("/v1/jobs", headers=AUTH, content=b"[" * (2 * 1024 * 1024)),
            400,
            "INVALID_ARGUMENT",
        ),
        (client.post(f"/v1/{job}:start", headers=AUTH, json={}), 409, "FAILED_PRECONDITION"),
        (client.get("/v1/jobs"), 401, "UNAUTHENTICATED"),
        (
            client.get("/v1/jobs", headers={"Authorization": "Bearer forged"}),
            401,
            "UNAUTHENTICATED",
        ),
        (client.get("/v1/nothing-here", headers=AUTH), 404, "NOT_FOUND"),
        (client.put("/v1/jobs", headers=AUTH), 405, "UNIMPLEMENTED"),
    ]
    for call, status, code in cases:
        response = await call
        assert response.status_code == status, (response.request.url, response.text)
        assert response.json()["error"]["status"] == code
        assert response.json()["error"]["message"]


# The jobs service is never reached, so neither is a database: one backend, not two runs
# of the same thing (~5 s each, the gateway's own waits for the upstream).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_upstream_unavailable_is_503(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"jobs_addr": "127.0.0.1:9"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            response = await c.get("/v1/jobs", headers=AUTH)
            assert response.status_code == 503
            assert response.json()["error"]["status"] == "UNAVAILABLE"
            assert (await c.get("/readyz")).status_code == 503


async def test_openapi_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert "post" in document["paths"]["/v1/jobs/{job}:start"]
    # One operation per path and verb: resources with a `name` each get their own path.
    assert set(document["paths"]["/v1/templates/{template}"]) == {"get", "patch", "delete"}
    assert set(document["paths"]["/v1/jobs/{job}"]) == {"get", "delete"}
    operations = [op for ops in document["paths"].values() for op in ops.values()]
    assert len(operations) == len(public_routes().routes)
    assert "bytereview.jobs.v1.Job" in document["components"]["schemas"]
    assert (await client.get("/docs")).status_code == 200


async def test_credentials_that_are_not_header_safe_are_401(client: httpx.AsyncClient) -> None:
    headers: dict[bytes, bytes]
    for headers in ({b"x-api-key": b"k\xe9y"}, {b"authorization": b"Bearer \x7f"}):
        response = await client.get("/v1/jobs", headers=headers)
        assert response.status_code == 401, headers
        assert "malformed" in response.json()["error"]["message"]
    # A request id that could not be forwarded is replaced, not echoed.
    response = await client.get("/v1/jobs", headers={**AUTH, "x-request-id": "a b"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] != "a b"


async def test_request_ids_are_echoed_on_every_answer(client: httpx.AsyncClient) -> None:
    given = {"x-request-id": "req-42.a:b"}
    ok = await client.get("/v1/jobs", headers={**AUTH, **given})
    missing = await client.get("/v1/nothing-here", headers={**AUTH, **given})
    unauthenticated = await client.get("/v1/jobs", headers=given)
    for response, status in ((ok, 200), (missing, 404), (unauthenticated, 401)):
        assert response.status_code == status
        assert response.headers.get_list("x-request-id") == ["req-42.a:b"]
    made_up = (await client.get("/healthz")).headers["x-request-id"]
    assert len(made_up) == 32
    assert made_up != (await client.get("/healthz")).headers["x-request-id"]


async def test_sse_watch_streams_events(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/jobs", headers=AUTH, json={"files": [{"path": "a.pdf", "sizeBytes": 3}]}
    )
    job = created.json()["job"]["name"]
    headers = {**AUTH, "Accept": "text/event-stream", "Last-Event-ID": "0"}

    async def cancel_soon() -> None:
        await asyncio.sleep(0.5)
        await client.post(f"/v1/{job}:cancel", headers=AUTH, json={})

    canceller = asyncio.create_task(cancel_soon())
    events = []
    async with client.stream(
        "GET", f"/v1/{job}:watch", headers=headers, params={"afterSequence": 0}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    await canceller
    assert events[-1]["toStatus"] == "CANCELLED"
    assert events[-1]["jobStatus"] == "CANCELLED"
