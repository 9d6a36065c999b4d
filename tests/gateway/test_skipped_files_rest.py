"""A combined result that left an unreadable file out, over REST (transcoded by the gateway
from the protos) and in the exports: the file, its path and why."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

import httpx
import pytest
from openpyxl import load_workbook

from bytereview.core import DEV_TOKEN, Settings
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs.server import RunningJobsService
from tests.services.extract.test_combined_skips import BOTH, CORRUPT, TOTAL_ONLY, combined_job
from tests.services.extract.test_worker import finished, running_worker, worker_settings

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_skipped_files_over_rest_and_in_exports(
    client: httpx.AsyncClient,
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    jobs: RunningJobsService,
) -> None:
    job, names = await combined_job(
        job_stub,
        worker_stub,
        settings,
        {"march/a.pdf": CORRUPT, "march/b.pdf": TOTAL_ONLY, "april/c.pdf": BOTH},
    )
    async with running_worker(worker_settings(settings, jobs)):
        assert (await finished(job_stub, job)).status == pb.Job.COMPLETED

    listed = await client.get(f"/v1/{job}/results", headers=AUTH)
    assert listed.status_code == 200
    by_path = {r["filePaths"][0]: r for r in listed.json()["results"]}
    march, april = by_path["march/a.pdf"], by_path["april/c.pdf"]
    [skipped] = march["skippedFiles"]
    assert set(skipped) == {"file", "path", "reason"}
    assert skipped["file"] == names["march/a.pdf"]
    assert skipped["path"] == "march/a.pdf"
    assert skipped["reason"].startswith("cannot read the PDF")
    assert march["values"]["total"] == "10.00"
    assert "skippedFiles" not in april  # an empty repeated field is left out of the JSON

    note = f"march/a.pdf: {skipped['reason']}"
    got = await client.get(f"/v1/{job}:export", params={"format": "csv"}, headers=AUTH)
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    column = rows[0].index("files left out")
    by_file = {row[0]: row[column] for row in rows[1:]}
    assert by_file == {"march/a.pdf; march/b.pdf": note, "april/c.pdf": ""}

    got = await client.get(f"/v1/{job}:export", params={"format": "json"}, headers=AUTH)
    items = {i["file"]: i["skipped_files"] for i in json.loads(got.content)["results"]}
    assert items == {
        "march/a.pdf; march/b.pdf": [{"path": "march/a.pdf", "reason": skipped["reason"]}],
        "april/c.pdf": [],
    }

    got = await client.get(f"/v1/{job}:export", params={"format": "xlsx"}, headers=AUTH)
    sheet = load_workbook(io.BytesIO(got.content)).active
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    at = cells[0].index("files left out")
    assert {row[0]: row[at] for row in cells[1:]} == {
        "march/a.pdf; march/b.pdf": note,
        "april/c.pdf": "",
    }
