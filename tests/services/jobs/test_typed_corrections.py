"""A user's correction is stored in its field's type, as an extracted value is: amounts and
dates in their canonical form, free text as written, what cannot be read refused by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from bytereview.core.settings import Settings
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import resources_pb2 as pb
from bytereview.jobs.v1 import worker_service_pb2 as worker_pb
from tests.conftest import USER
from tests.services.jobs.helpers import WORKER, running_tasks

if TYPE_CHECKING:
    from tests.services.jobs.helpers import JobStub, WorkerStub

FIELDS = [
    pb.JobField(name="vendor", data_type="text"),
    pb.JobField(name="address", data_type="address"),
    pb.JobField(name="total", data_type="currency"),
    pb.JobField(name="invoice_date", data_type="date"),
    pb.JobField(name="due", data_type="date_mdy"),
    pb.JobField(name="items", data_type="integer"),
    pb.JobField(name="paid", data_type="boolean"),
    pb.JobField(name="email", data_type="email"),
]
EXTRACTED: dict[str, Any] = {
    "vendor": "Acme",
    "address": "1 Main St",
    "total": "30.90",
    "invoice_date": "2014-08-03",
    "due": "08/31/2014",
    "items": 3,
    "paid": False,
    "email": "billing@acme.test",
}


async def _result(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    extracted: dict[str, Any] = EXTRACTED,
) -> str:
    """A result of `extracted`, as a worker reports one."""
    job, [task] = await running_tasks(job_stub, worker_stub, settings, FIELDS, 1)
    values = struct_pb2.Struct()
    values.update(extracted)
    await worker_stub.ReportTaskResult(
        worker_pb.ReportTaskResultRequest(task=task, values=values), metadata=WORKER
    )
    got = await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    [result] = got.results
    return result.name


async def _correct(job_stub: JobStub, result: str, values: dict[str, Any]) -> dict[str, Any]:
    sent = struct_pb2.Struct()
    sent.update(values)
    got = await job_stub.UpdateResult(
        jobs_pb.UpdateResultRequest(
            result=pb.Result(name=result, values=sent),
            update_mask=field_mask_pb2.FieldMask(paths=["values"]),
        ),
        metadata=USER,
    )
    return dict(got.values)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_correction_is_stored_in_its_fields_type(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    result = await _result(job_stub, worker_stub, settings)
    stored = await _correct(
        job_stub,
        result,
        {
            "vendor": "  ACME  Ltd ",
            "address": "1 Main St,\n  Springfield",
            "total": "$1,234.50",
            "invoice_date": "3 September 2014",
            "due": "2014-09-30",
            "items": "12",
            "paid": "yes",
            "email": "Billing@ACME.test",
        },
    )
    assert stored == {
        "vendor": "ACME  Ltd",  # free text as written, but for the spaces around it
        "address": "1 Main St,\n  Springfield",
        "total": "1234.50",
        "invoice_date": "2014-09-03",
        "due": "09/30/2014",
        "items": 12,
        "paid": True,
        "email": "billing@acme.test",
    }
    # A number from a client (JSON has no decimal strings) is an amount with two places.
    assert (await _correct(job_stub, result, {"total": 99}))["total"] == "99.00"
    # ... and every place it has: 12.505 was stored "12.50".
    assert (await _correct(job_stub, result, {"total": 12.505}))["total"] == "12.505"
    # Cleared is cleared, whatever the type.
    cleared = await _correct(job_stub, result, {"total": None, "invoice_date": None})
    assert (cleared["total"], cleared["invoice_date"]) == (None, None)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"total": "about a hundred"}, "values.total (Currency field): no amount in"),
        ({"items": "2.5"}, "values.items (Integer field): '2.5' is not a whole number"),
        ({"paid": "perhaps"}, "values.paid (Yes/No field): 'perhaps' is not yes or no"),
        ({"email": "nobody"}, "values.email (Email field): 'nobody' is not an email address"),
        # A typed amount must be one number, not hold one: a document's reading takes the
        # first it finds, and these were stored -2 and 12.
        ({"total": "INV-2"}, "values.total (Currency field): 'INV-2' is not one number"),
        ({"total": "12 or 13"}, "values.total (Currency field): '12 or 13' is not one number"),
        ({"invoice_date": "next tuesday"}, "values.invoice_date (Date field): 'next tuesday' is"),
        # A date must be all of the value: a document's reading finds 3/13/2018 in the first
        # (a date glued to a digit) and 1/02/2018 in the second, which no one typed.
        ({"invoice_date": "13/13/2018"}, "values.invoice_date (Date field): '13/13/2018' is not"),
        ({"due": "31/02/2018"}, "values.due (Date (MM/DD/YYYY) field): '31/02/2018' is not"),
        ({"invoice_date": "2018-13-01"}, "values.invoice_date (Date field): '2018-13-01' is not"),
        # The order of 03/08/2014 only its writer knows.
        (
            {"invoice_date": "03/08/2014"},
            "values.invoice_date (Date field): '03/08/2014' could be 2014-08-03 or 2014-03-08;"
            " write it as YYYY-MM-DD",
        ),
        # Text is a string: a number or a boolean was stored as given (exported `42.0`, `True`).
        ({"vendor": 42}, "values.vendor (Text field): 42.0 is a number, not text"),
        ({"address": True}, "values.address (Address field): True is a boolean, not text"),
    ],
    ids=[
        "amount",
        "integer",
        "boolean",
        "email",
        "amount-hyphen",
        "two-amounts",
        "date",
        "day-13-month-13",
        "february-31",
        "month-13-iso",
        "ambiguous-date",
        "text-number",
        "text-boolean",
    ],
)
async def test_a_value_not_of_its_type_is_refused_and_nothing_is_stored(
    job_stub: JobStub,
    worker_stub: WorkerStub,
    settings: Settings,
    values: dict[str, Any],
    message: str,
) -> None:
    result = await _result(job_stub, worker_stub, settings)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _correct(job_stub, result, {"vendor": "Other", **values})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith(message)
    job = result.rsplit("/results/", 1)[0]
    got = await job_stub.ListResults(jobs_pb.ListResultsRequest(parent=job), metadata=USER)
    assert dict(got.results[0].values) == EXTRACTED
    versions = await job_stub.ListResultVersions(
        jobs_pb.ListResultVersionsRequest(parent=result), metadata=USER
    )
    assert len(versions.versions) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_value_sent_back_as_stored_is_no_change(
    job_stub: JobStub, worker_stub: WorkerStub, settings: Settings
) -> None:
    """A client sending the whole map back (the web app's edit of one value does not, the
    API allows it) changes nothing it did not change, in whatever form a value is stored:
    here an amount stored as a number (as results were before amounts were strings) and a
    date an older model gave in the document's own form."""
    older = {**EXTRACTED, "total": 30.9, "invoice_date": "3 Aug 2014"}
    result = await _result(job_stub, worker_stub, settings, older)
    assert await _correct(job_stub, result, older) == older
    versions = await job_stub.ListResultVersions(
        jobs_pb.ListResultVersionsRequest(parent=result), metadata=USER
    )
    assert len(versions.versions) == 1
