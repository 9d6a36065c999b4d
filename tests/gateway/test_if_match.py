"""HTTP's If-Match on a result's PATCH is its etag (gateway/preconditions.py): a stale
If-Match overwrote a newer version, where the same etag in the body was refused (the CLI
trial). The real gateway in front of the real jobs service."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from bytereview.core import DEV_TOKEN
from bytereview.core.settings import Settings
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
    assert stale.status_code == 409, stale.text
    assert stale.json()["error"]["status"] == "ABORTED"
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
