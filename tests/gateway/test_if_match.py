"""HTTP's If-Match is the call's etag (gateway/preconditions.py): on a result's PATCH a stale
If-Match overwrote a newer version, where the same etag in the body was refused (the CLI
trial); `:accept` and `:revert` take it too. A stale header is answered 412, as HTTP says;
a stale etag in the body 409 (AIP-193). The real gateway in front of the real jobs service."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from bytereview.core import DEV_TOKEN
from bytereview.core.settings import Settings
from tests.services.jobs.test_review import THRESHOLD, assessed_job
from tests.services.jobs.test_typed_corrections import _result

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_a_stale_if_match_is_refused_and_a_current_one_goes_through(
    client: httpx.AsyncClient, job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    name = await _result(job_stub, worker_stub, settings)

    async def patch(values: dict[str, str], **headers: str) -> httpx.Response:
        return await client.patch(
            f"/v1/{name}",
            headers={**AUTH, **headers},
            params={"updateMask": "values"},
            json={"values": values},
        )

    first = await patch({"vendor": "A"}, **{"If-Match": '"1"'})
    assert first.status_code == 200, first.text
    assert first.json()["etag"] == '"2"'
    stale = await patch({"vendor": "B"}, **{"If-Match": '"1"'})
    assert stale.status_code == 412, stale.text
    assert stale.json()["error"]["status"] == "ABORTED"
    in_body = await client.patch(
        f"/v1/{name}",
        headers=AUTH,
        params={"updateMask": "values"},
        json={"values": {"vendor": "B"}, "etag": '"1"'},
    )
    assert in_body.status_code == 409, in_body.text
    assert (await patch({"vendor": "B"}, **{"If-Match": "*"})).status_code == 200
    for bad in ('"3", "4"', "W/x"):
        refused = await patch({"vendor": "C"}, **{"If-Match": bad})
        assert refused.status_code == 400, (bad, refused.text)


async def test_if_match_on_a_resource_without_an_etag_is_refused(client: httpx.AsyncClient) -> None:
    made = await client.post(
        "/v1/templates",
        headers=AUTH,
        json={"displayName": "t", "fields": [{"name": "total", "dataType": "currency"}]},
    )
    refused = await client.patch(
        f"/v1/{made.json()['name']}",
        headers={**AUTH, "If-Match": '"1"'},
        params={"updateMask": "description"},
        json={"description": "x"},
    )
    assert refused.status_code == 400
    assert "has no etag" in refused.json()["error"]["message"]


async def test_if_match_on_accept_and_revert_is_their_etag(
    client: httpx.AsyncClient, job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    name = await _result(job_stub, worker_stub, settings)
    fixed = await client.patch(
        f"/v1/{name}",
        headers=AUTH,
        params={"updateMask": "values"},
        json={"values": {"vendor": "A"}},
    )
    assert fixed.json()["etag"] == '"2"'

    revert = f"/v1/{name}:revert"
    to_v1 = {"version": f"{name}/versions/1"}
    stale = await client.post(revert, headers={**AUTH, "If-Match": '"1"'}, json=to_v1)
    assert stale.status_code == 412, stale.text
    assert "changed since it was read" in stale.json()["error"]["message"]
    mixed = await client.post(
        revert, headers={**AUTH, "If-Match": '"2"'}, json={**to_v1, "etag": '"1"'}
    )
    assert mixed.status_code == 400, mixed.text
    done = await client.post(revert, headers={**AUTH, "If-Match": '"2"'}, json=to_v1)
    assert done.status_code == 200, done.text
    assert done.json()["etag"] == '"3"'


@pytest.mark.settings(review_confidence_threshold=THRESHOLD)
async def test_if_match_on_accept_is_the_review_items_etag(
    client: httpx.AsyncClient, job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await assessed_job(job_stub, worker_stub, settings)
    listed = await client.get(f"/v1/{job}/reviewItems", headers=AUTH)
    item = listed.json()["reviewItems"][0]
    assert item["etag"] == '"1"'
    await client.patch(
        f"/v1/{item['result']}",
        headers=AUTH,
        params={"updateMask": "values"},
        json={"values": {"number": "A-10"}},
    )

    accept = f"/v1/{item['name']}:accept"
    stale = await client.post(accept, headers={**AUTH, "If-Match": item["etag"]})
    assert stale.status_code == 412, stale.text
    accepted = await client.post(accept, headers={**AUTH, "If-Match": '"2"'})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["etag"] == '"2"'
    assert accepted.json()["assessment"]["reviewed"] is True


async def test_the_openapi_document_names_if_match_where_it_is_taken(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    def takes_if_match(path: str, method: str) -> bool:
        op = paths[path][method]
        headers = {p["name"] for p in op["parameters"] if p["in"] == "header"}
        return "If-Match" in headers and "412" in op["responses"]

    assert takes_if_match("/v1/jobs/{job}/results/{result}", "patch")
    assert takes_if_match("/v1/jobs/{job}/results/{result}:revert", "post")
    assert takes_if_match("/v1/jobs/{job}/results/{result}/values/{value}:accept", "post")
    assert not takes_if_match("/v1/jobs/{job}:cancel", "post")
    assert not takes_if_match("/v1/templates/{template}", "patch")
