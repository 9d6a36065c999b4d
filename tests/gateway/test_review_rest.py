"""The review queue and evidence over REST, transcoded by the gateway from the protos."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

import httpx
import pytest

from bytereview.core import DEV_TOKEN, Settings
from tests.services.jobs.test_review import THRESHOLD, assessed_job

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.settings(review_confidence_threshold=THRESHOLD)
async def test_review_queue_over_rest(
    client: httpx.AsyncClient, job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = await assessed_job(job_stub, worker_stub, settings)

    got = (await client.get(f"/v1/{job}", headers=AUTH)).json()
    assert got["counters"]["valuesNeedingReview"] == 2

    listed = await client.get(f"/v1/{job}/reviewItems", headers=AUTH)
    assert listed.status_code == 200
    body = listed.json()
    assert body["totalSize"] == 2
    first = body["reviewItems"][0]
    assert first["name"].startswith(f"{job}/results/")
    assert first["name"].endswith("/values/total")
    assert first["field"] == "total"
    assert first["dataType"] == "currency"
    assert first["value"] == "10.00"
    assert first["reasons"] == ["low_confidence"]
    assert first["filePaths"] == ["folder0/doc0.pdf"]
    assessment = first["assessment"]
    assert assessment["confidence"] == pytest.approx(0.3)
    assert assessment["verified"] is True
    assert assessment["needsReview"] is True
    assert assessment["evidence"]["quote"] == "Total: 10.00"
    assert assessment["evidence"]["page"] == 1
    assert assessment["evidence"]["box"] == {
        "left": 0.1,
        "top": 0.2,
        "right": 0.5,
        "bottom": 0.25,
    }

    across = (await client.get("/v1/jobs/-/reviewItems", headers=AUTH)).json()
    assert [i["name"] for i in across["reviewItems"]] == [i["name"] for i in body["reviewItems"]]
    stricter = await client.get(
        f"/v1/{job}/reviewItems", headers=AUTH, params={"confidenceBelow": 0.96}
    )
    assert stricter.json()["totalSize"] == 3
    bad = await client.get(f"/v1/{job}/reviewItems", headers=AUTH, params={"confidenceBelow": 2})
    assert bad.status_code == 400

    accepted = await client.post(f"/v1/{first['name']}:accept", headers=AUTH, json={})
    assert accepted.status_code == 200
    assert accepted.json()["assessment"]["reviewed"] is True
    missing = await client.post(
        f"/v1/{first['name'].rsplit('/', 1)[0]}/nothing:accept", headers=AUTH, json={}
    )
    assert missing.status_code == 404

    # Results carry the assessments; the export can add evidence columns.
    results = (await client.get(f"/v1/{job}/results", headers=AUTH)).json()["results"]
    assert results[0]["assessments"]["total"]["reviewed"] is True
    assert results[0]["assessments"]["number"]["evidence"]["quote"] == "Invoice Number: A-1"
    exported = await client.get(
        f"/v1/{job}:export", headers=AUTH, params={"format": "csv", "includeEvidence": "true"}
    )
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["file", "number", "total"]
    assert rows[0][3:7] == ["number.confidence", "number.verified", "number.page", "number.quote"]
    assert rows[1][3:7] == ["0.95", "True", "1", "Invoice Number: A-1"]
    plain = await client.get(f"/v1/{job}:export", headers=AUTH, params={"format": "csv"})
    assert next(csv.reader(io.StringIO(plain.content.decode("utf-8-sig")))) == [
        "file",
        "number",
        "total",
    ]
    as_json = await client.get(
        f"/v1/{job}:export", headers=AUTH, params={"format": "json", "includeEvidence": "true"}
    )
    item = json.loads(as_json.content)["results"][0]
    assert item["assessments"]["total"]["confidence"] == pytest.approx(0.3)
