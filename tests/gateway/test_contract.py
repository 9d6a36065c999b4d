"""The OpenAPI document declares what the server enforces; answers follow HTTP (#14)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from bytereview.core import DEV_TOKEN

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


async def test_405_says_which_methods_are_allowed(client: httpx.AsyncClient) -> None:
    refused = await client.put("/v1/jobs", headers=AUTH)
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, HEAD, POST"
    for method in ("OPTIONS", "TRACE"):
        other = await client.request(method, "/v1/jobs", headers=AUTH)
        assert other.status_code == 405, method
        assert other.headers["allow"] == "GET, HEAD, POST"
    one = await client.post(f"/v1/jobs/{'0' * 32}/files", headers=AUTH, json={})
    assert one.status_code == 405
    assert one.headers["allow"] == "GET, HEAD"


async def test_sync_without_a_body_is_what_the_document_says(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    body = document["paths"]["/v1/users/me:sync"]["post"]["requestBody"]
    assert body["required"] is False
    synced = await client.post("/v1/users/me:sync", headers=AUTH)
    assert synced.status_code == 200, synced.text
    # A body that is the resource itself is required, and refused when missing.
    assert document["paths"]["/v1/templates"]["post"]["requestBody"]["required"] is True
    missing = await client.post("/v1/templates", headers=AUTH)
    assert missing.status_code == 400


async def test_declared_patterns_and_ranges_match_the_server(client: httpx.AsyncClient) -> None:
    document: dict[str, Any] = (await client.get("/openapi.json")).json()
    get_job = document["paths"]["/v1/jobs/{job}"]["get"]
    (job_param,) = get_job["parameters"]
    pattern = job_param["schema"]["pattern"]
    # Ids the server refuses are outside the declared pattern, and the other way round.
    for job_id, status in (("0", 400), ("x" * 32, 400), ("0" * 32, 404)):
        answer = await client.get(f"/v1/jobs/{job_id}", headers=AUTH)
        assert answer.status_code == status
        assert (re.fullmatch(pattern.strip("^$"), job_id) is not None) == (status == 404)
    assert {"400", "401", "404"} <= set(get_job["responses"])
    listed = {p["name"]: p["schema"] for p in document["paths"]["/v1/jobs"]["get"]["parameters"]}
    assert (listed["page_size"]["minimum"], listed["page_size"]["maximum"]) == (0, 1000)
    for size, status in ((-1, 400), (0, 200), (1000, 200), (1001, 400), (-(2**31), 400)):
        answer = await client.get("/v1/jobs", headers=AUTH, params={"pageSize": size})
        assert answer.status_code == status, (size, answer.text)
    # Enums by name only, as declared; a number is outside the document.
    assert (await client.get("/v1/jobs", headers=AUTH, params={"status": "0"})).status_code == 400
    watch = document["paths"]["/v1/jobs/{job}:watch"]["get"]["parameters"]
    after = next(p["schema"] for p in watch if p["name"] == "after_sequence")
    assert re.fullmatch(after["pattern"].strip("^$"), "1180591620717411303424") is None


async def test_every_error_body_has_a_message_and_the_request_id(
    client: httpx.AsyncClient,
) -> None:
    given = {"x-request-id": "req-contract-1"}
    answers = [
        await client.get("/v1/jobs", headers=given),  # 401 (no credential)
        await client.get("/v1/jobs/0", headers={**AUTH, **given}),  # 400
        await client.get(f"/v1/jobs/{'0' * 32}", headers={**AUTH, **given}),  # 404
        await client.put("/v1/jobs", headers={**AUTH, **given}),  # 405
        await client.get("/v1/nothing/here", headers={**AUTH, **given}),  # 404, no route
    ]
    for answer in answers:
        error = answer.json()["error"]
        assert error["message"], answer.text
        assert {
            "@type": "type.googleapis.com/google.rpc.RequestInfo",
            "requestId": "req-contract-1",
        } in error["details"], answer.text
    assert answers[3].headers["allow"] == "GET, HEAD, POST"


async def test_a_request_not_allowed_in_the_current_state_is_409(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(
        "/v1/jobs", headers=AUTH, json={"files": [{"path": "a.pdf", "sizeBytes": 10}]}
    )
    assert created.status_code == 200, created.text
    job = created.json()["job"]["name"]
    # Well formed, but the job is still waiting for its uploads: a conflict with its state.
    started = await client.post(f"/v1/{job}:start", headers=AUTH)
    assert started.status_code == 409, started.text
    assert started.json()["error"]["status"] == "FAILED_PRECONDITION"


async def test_the_document_declares_body_rules_and_links(client: httpx.AsyncClient) -> None:
    document: dict[str, Any] = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    create = document["paths"]["/v1/jobs"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    # field_behavior REQUIRED -> required and non-empty; the limits table -> counts and sizes.
    assert body["required"] == ["files"]
    assert (body["properties"]["files"]["minItems"], body["properties"]["files"]["maxItems"]) == (
        1,
        10_000,
    )
    declared = schemas["bytereview.jobs.v1.DeclaredFile"]
    assert declared["required"] == ["path", "sizeBytes"]
    assert declared["properties"]["sizeBytes"]["minimum"] == 1
    # OUTPUT_ONLY and IDENTIFIER fields are not sent in requests.
    job = schemas["bytereview.jobs.v1.Job"]["properties"]
    assert job["status"]["readOnly"]
    assert job["name"]["readOnly"]
    # A resource reference matches the resource's pattern (google.api.resource), or is empty.
    configure = document["paths"]["/v1/jobs/{job}:configure"]["post"]["requestBody"]
    template = configure["content"]["application/json"]["schema"]["properties"]["template"]
    assert re.search(template["pattern"], f"templates/{'a' * 32}")
    assert not re.search(template["pattern"], "templates/x")
    bad_bodies: list[dict[str, Any]] = [
        {"files": []},
        {"files": [{"path": "../x", "sizeBytes": 1}]},
    ]
    for bad in bad_bodies:
        refused = await client.post("/v1/jobs", headers=AUTH, json=bad)
        assert refused.status_code == 400, refused.text
    # Page tokens are opaque: a format, not a syntax a client could make values from.
    listed = {p["name"]: p["schema"] for p in document["paths"]["/v1/jobs"]["get"]["parameters"]}
    assert listed["page_token"]["format"] == "page-token"
    # Links: a created job leads to the operations on it; the id is taken out of its name.
    links = create["responses"]["200"]["links"]
    assert {"GetJob", "ConfigureJob", "StartJob", "ListFiles", "ListResults"} <= set(links)
    assert links["GetJob"]["parameters"]["job"].endswith("#regex:^jobs/([^/]+)$")
    api_key = document["paths"]["/v1/users/{user}/apiKeys"]["post"]["responses"]["200"]
    assert set(api_key["links"]["DeleteApiKey"]["parameters"]) == {"user", "apiKey"}
    template_links = document["paths"]["/v1/templates"]["post"]["responses"]["200"]["links"]
    assert set(template_links) == {"GetTemplate", "UpdateTemplate", "DeleteTemplate"}


async def test_downloads_answer_the_media_types_the_document_declares(
    client: httpx.AsyncClient,
) -> None:
    # Both were declared application/octet-stream; exports answer one type per format and
    # pages are PNGs (schemathesis on real resources: "Undocumented Content-Type").
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    export = paths["/v1/jobs/{job}:export"]["get"]["responses"]["200"]["content"]
    render = paths["/v1/jobs/{job}/files/{file}:renderPage"]["get"]["responses"]["200"]
    assert list(render["content"]) == ["image/png"]
    created = await client.post(
        "/v1/jobs", headers=AUTH, json={"files": [{"path": "a.pdf", "sizeBytes": 3}]}
    )
    job = created.json()["job"]["name"]
    answered = set()
    for fmt in ("csv", "json", "xlsx"):
        exported = await client.get(f"/v1/{job}:export", headers=AUTH, params={"format": fmt})
        assert exported.status_code == 200, exported.text
        answered.add(exported.headers["content-type"].split(";")[0])
    assert answered == set(export)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_optional_enum_lists_null_as_the_server_takes_it(
    client: httpx.AsyncClient,
) -> None:
    # OpenAPI 3.0.3: `nullable` does not widen an `enum`; null must be one of its values, or
    # `"taskMode": null`, which the server takes (the default), is outside the document.
    document = (await client.get("/openapi.json")).json()
    plan = document["paths"]["/v1/jobs/{job}:planTasks"]["post"]["requestBody"]
    mode = plan["content"]["application/json"]["schema"]["properties"]["taskMode"]
    assert mode["nullable"] is True
    assert None in mode["enum"]
    rule = document["components"]["schemas"]["bytereview.jobs.v1.FolderRule"]
    assert None not in rule["properties"]["taskMode"]["enum"]  # required: never null


async def test_a_body_that_is_the_resource_is_required_as_documented(
    client: httpx.AsyncClient,
) -> None:
    # CreateApiKey made a key from no body at all, and UpdateTemplate with a mask cleared the
    # masked field, though the document says these bodies are required.
    document = (await client.get("/openapi.json")).json()
    made = await client.post(
        "/v1/templates",
        headers=AUTH,
        json={
            "displayName": "t",
            "fields": [{"name": "total", "dataType": "currency"}],
            "description": "kept",
        },
    )
    template = made.json()["name"]
    paths = document["paths"]
    for documented, method, path, params in (
        ("/v1/users/{user}/apiKeys", "post", "/v1/users/me/apiKeys", {}),
        ("/v1/templates/{template}", "patch", f"/v1/{template}", {"updateMask": "description"}),
        (
            "/v1/jobs/{job}/results/{result}",
            "patch",
            f"/v1/jobs/{'0' * 32}/results/{'0' * 32}",
            {"updateMask": "values"},
        ),
    ):
        assert paths[documented][method]["requestBody"]["required"] is True
        refused = await client.request(method, path, headers=AUTH, params=params)
        assert refused.status_code == 400, (path, refused.text)
        assert "the request body is required" in refused.json()["error"]["message"]
    assert (await client.get("/v1/users/me/apiKeys", headers=AUTH)).json() == {}
    assert (await client.get(f"/v1/{template}", headers=AUTH)).json()["description"] == "kept"
    # With a body, as before.
    assert (await client.post("/v1/users/me/apiKeys", headers=AUTH, json={})).status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_export_formats_are_the_documented_names_exactly(client: httpx.AsyncClient) -> None:
    # `format=` (the default) was taken though the document's enum left it out, and `CSV`
    # or `Json` were lowercased and taken though the document lists lowercase names only.
    document = (await client.get("/openapi.json")).json()
    parameters = document["paths"]["/v1/jobs/{job}:export"]["get"]["parameters"]
    declared = next(p["schema"]["enum"] for p in parameters if p["name"] == "format")
    created = await client.post(
        "/v1/jobs", headers=AUTH, json={"files": [{"path": "a.pdf", "sizeBytes": 3}]}
    )
    job = created.json()["job"]["name"]
    for fmt in ("CSV", "Json", " xlsx", "csv ", "FORMAT_UNSPECIFIED"):
        assert fmt not in declared
        refused = await client.get(f"/v1/{job}:export", headers=AUTH, params={"format": fmt})
        assert refused.status_code == 400, (fmt, refused.text)
        assert repr(fmt) in refused.json()["error"]["message"]
    for fmt in declared:
        taken = await client.get(f"/v1/{job}:export", headers=AUTH, params={"format": fmt})
        assert taken.status_code == 200, (fmt, taken.text)
    default = await client.get(f"/v1/{job}:export", headers=AUTH, params={"format": ""})
    assert default.headers["content-type"].startswith("text/csv")
