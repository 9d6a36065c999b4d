"""Date fields export as dates: a date cell in XLSX, shown in the field's own order, and the
text as stored in CSV and JSON. As text, a spreadsheet could not sort or filter them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import TYPE_CHECKING

import pytest
from openpyxl import load_workbook

from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from tests.conftest import USER
from tests.services.jobs.test_typed_corrections import EXTRACTED, _result

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _export(job_stub: JobStub, job: str, fmt: str) -> bytes:
    call = job_stub.ExportResults(jobs_pb.ExportResultsRequest(name=job, format=fmt), metadata=USER)
    return b"".join([chunk.data async for chunk in call])


async def test_dates_are_date_cells_in_xlsx_and_text_as_stored_elsewhere(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    job = (await _result(job_stub, worker_stub, settings)).rsplit("/results/", 1)[0]
    sheet = load_workbook(io.BytesIO(await _export(job_stub, job, "xlsx"))).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    when, due = header.index("invoice_date") + 1, header.index("due") + 1
    assert sheet.cell(2, when).value == dt.datetime(2014, 8, 3)
    assert sheet.cell(2, when).number_format == "yyyy-mm-dd"
    assert sheet.cell(2, due).value == dt.datetime(2014, 8, 31)
    assert sheet.cell(2, due).number_format == "mm/dd/yyyy"
    rows = list(csv.reader(io.StringIO((await _export(job_stub, job, "csv")).decode("utf-8-sig"))))
    assert (rows[1][when - 1], rows[1][due - 1]) == ("2014-08-03", "08/31/2014")
    parsed = json.loads(await _export(job_stub, job, "json"))
    assert parsed["results"][0]["values"]["due"] == "08/31/2014"


async def test_a_date_not_in_its_fields_form_stays_text(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    """An older result's date, stored before dates were normalised."""
    older = {**EXTRACTED, "due": "31 Aug 2014"}
    job = (await _result(job_stub, worker_stub, settings, older)).rsplit("/results/", 1)[0]
    sheet = load_workbook(io.BytesIO(await _export(job_stub, job, "xlsx"))).active
    assert sheet is not None
    due = [c.value for c in sheet[1]].index("due") + 1
    assert sheet.cell(2, due).value == "31 Aug 2014"
