"""The user's own labelled fields: the value without its label, from the right line, or null."""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping

import pytest

from services.extract.base import Document, ExtractionRequest
from services.extract.offline.extractor import OfflineExtractor
from services.extract.offline.labels import concept_for, iban_valid
from services.extract.schema import DEFAULT_TYPES, Field
from tests.pdfs import placed_pdf, text_pdf
from tests.services.extract.labelled_set import FIELDS, SAMPLES, Sample


async def extract(lines: list[str], fields: list[Field]) -> Mapping[str, object]:
    document = Document(
        "f", "f.pdf", "application/pdf", functools.partial(io.BytesIO, text_pdf(lines))
    )
    got = await OfflineExtractor().extract(ExtractionRequest(fields, DEFAULT_TYPES, [document]))
    return got.values


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
async def test_generated_invoices_give_every_labelled_field(sample: Sample) -> None:
    assert await extract(sample.lines, FIELDS) == sample.expected


async def test_the_issues_invoice_gives_values_without_labels_and_null_when_absent() -> None:
    lines = [
        "ACME Corp",
        "Invoice No: ACME-2026-0042",
        "Date: 2026-03-01",
        "Net amount 100.00",
        "VAT (19%) 19.00",
        "Total 119.00",
    ]
    fields = [
        Field("invoice_number", "text", "the invoice number"),
        Field("vat", "currency", "the VAT amount"),
        Field("total", "currency", "the total amount, VAT included"),  # not the VAT
        Field("due_date", "date_ymd", "the due date"),
    ]
    assert await extract(lines, fields) == {
        "invoice_number": "ACME-2026-0042",
        "vat": "19.00",
        "total": "119.00",
        "due_date": None,  # not printed: never the invoice date next to it
    }


async def test_a_field_named_for_its_own_label_is_read_there_and_nowhere_else() -> None:
    lines = ["Shop Ltd", "Date: 01/02/2026", "Delivery date: 05/02/2026", "Ref: 889"]
    fields = [
        Field("delivery_date", "date_ymd"),
        Field("collection_date", "date_ymd"),
        Field("booking_reference", "text"),
    ]
    assert await extract(lines, fields) == {
        "delivery_date": "2026-02-05",
        "collection_date": None,
        "booking_reference": None,
    }


@pytest.mark.parametrize(
    ("field", "concept"),
    [
        (Field("invoice_no", "text"), "invoice_number"),
        (Field("po", "text", "purchase order"), "po_number"),
        (Field("vat", "currency", "the VAT amount"), "tax_amount"),
        (Field("vat_number", "text"), "vat_number"),
        (Field("payment_due", "date_dmy"), "due_date"),
        (Field("iban", "text"), "iban"),
        (Field("klantnummer", "text"), "customer_number"),
        # A word the concept does not know names another field.
        (Field("delivery_date", "date_ymd"), None),
    ],
)
def test_fields_are_matched_to_what_they_ask_for(field: Field, concept: str | None) -> None:
    found = concept_for(field)
    assert (found.name if found else None) == concept


def test_ibans_are_checked_by_their_check_digits() -> None:
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("GB83WEST12345698765432")
    assert not iban_valid("FR76***************************")


async def test_a_booking_receipt_is_numbered_by_its_booking_but_an_invoice_number_comes_first() -> (
    None
):
    field = Field("invoice_number", "text", "the invoice number")
    receipt = ["PAYMENT RECEIPT", "Booking ID", "IBZY2087", "Grand Total Rs 1939"]
    assert await extract(receipt, [field]) == {"invoice_number": "IBZY2087"}
    invoice = ["Booking ID: IBZY2087", "Invoice No: INV-77", "Total 10.00"]
    assert await extract(invoice, [field]) == {"invoice_number": "INV-77"}


async def test_a_form_whose_labels_and_values_were_drawn_apart_is_read_in_rows() -> None:
    # The producer drew the values first and the labels after them, as QualityHosting's
    # invoice does: in the text layer's order no label has its value beside it.
    runs = [
        (72.0, 740.0, "ACME GmbH"),
        (300.0, 700.0, "30064443"),
        (300.0, 680.0, "7. Mai 2014"),
        (72.0, 640.0, "Kundenportal: https://acme.example"),
        (72.0, 620.0, "Bitte geben Sie bei Zahlung an:"),
        (72.0, 700.0, "Rechnungsnr."),
        (72.0, 680.0, "Rechnungsdatum"),
        (72.0, 600.0, "Total EUR 34,73"),
    ]
    document = Document(
        "f", "f.pdf", "application/pdf", functools.partial(io.BytesIO, placed_pdf(runs))
    )
    fields = [
        Field("invoice_number", "text", "the invoice number"),
        Field("date", "date_ymd", "the invoice date"),
        Field("due_date", "date_ymd", "the due date"),
    ]
    got = await OfflineExtractor().extract(ExtractionRequest(fields, DEFAULT_TYPES, [document]))
    assert got.values == {"invoice_number": "30064443", "date": "2014-05-07", "due_date": None}
