"""The OpenAPI document declares what the server enforces; answers follow HTTP (#14)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from bytereview.core import DEV_TOKEN

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


async def test_405_says_which_methods_are_allowed(client: httpx.AsyncClient) -> None:
    refused = await client.put("/v1/jobs", headers=AUTH)
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, POST"
    for method in ("OPTIONS", "TRACE", "HEAD"):
        other = await client.request(method, "/v1/jobs", headers=AUTH)
        assert other.status_code == 405, method
        assert other.headers["allow"] == "GET, POST"
    one = await client.post(f"/v1/jobs/{'0' * 32}/files", headers=AUTH, json={})
    assert one.status_code == 405
    assert one.headers["allow"] == "GET"


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
