"""The offline extractor: bundled OCR for images and scanned PDFs, layout rules, date reading."""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections.abc import Mapping

import pytest
from PIL import Image, ImageDraw, ImageFont

from bytereview.values.dates import day_first_in
from bytereview.values.typed import InvalidValue, normalise, parse_date
from services.extract import (
    DEFAULT_TYPES,
    Document,
    ExtractionError,
    ExtractionRequest,
    Field,
    OfflineExtractor,
)
from services.extract.offline.layout import by_layout
from tests.pdfs import text_pdf

RECEIPT = [
    "ACME TRADING SDN BHD",
    "12 JALAN SATU, TAMAN DUA",
    "50000 KUALA LUMPUR",
    "Tel: 03-12345678",
    "Date: 27/03/2018 18:46",
    "TOTAL AMOUNT RM 60.31",
    "ROUNDING ADJ -0.01",
    "CASH RM 70.00",
]
FIELDS = [
    Field("company", "text", "the seller"),
    Field("address", "address"),
    Field("date", "date_dmy"),
    Field("total", "currency", "the total paid"),
]


def receipt_png(lines: list[str]) -> bytes:
    font = ImageFont.load_default(size=36)
    image = Image.new("RGB", (1000, 80 + 60 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((40, 40 + 60 * i), line, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def document(data: bytes, media_type: str, path: str = "r") -> Document:
    return Document("f", path, media_type, functools.partial(io.BytesIO, data))


async def extract(data: bytes, media_type: str) -> Mapping[str, object]:
    got = await OfflineExtractor().extract(
        ExtractionRequest(FIELDS, DEFAULT_TYPES, [document(data, media_type)])
    )
    return got.values


async def test_images_are_read_by_the_bundled_ocr() -> None:
    values = await extract(receipt_png(RECEIPT), "image/png")
    # This OCR model often drops spaces; the scorer and users compare without them.
    assert str(values["company"]).replace(" ", "") == "ACMETRADINGSDNBHD"
    assert values["date"] == "27/03/2018"
    assert values["total"] == "60.30"  # after the rounding adjustment, cents kept
    assert "KUALALUMPUR" in str(values["address"]).replace(" ", "")


async def test_scanned_pdf_pages_fall_back_to_ocr() -> None:
    image = Image.open(io.BytesIO(receipt_png(RECEIPT)))
    pdf = io.BytesIO()
    image.save(pdf, format="PDF")  # an image-only page: no text layer
    values = await extract(pdf.getvalue(), "application/pdf")
    assert values["total"] == "60.30"


async def test_text_layer_is_used_when_present() -> None:
    values = await extract(text_pdf(RECEIPT), "application/pdf")
    assert values["company"] == "ACME TRADING SDN BHD"
    assert values["total"] == "60.30"


async def test_unreadable_input_is_a_permanent_error() -> None:
    with pytest.raises(ExtractionError) as caught:
        await extract(b"\x89PNG\r\n\x1a\n not really", "image/png")
    assert not caught.value.retryable
    with pytest.raises(ExtractionError):
        await extract(b"%PDF-1.7 broken", "application/pdf")


@pytest.mark.parametrize(
    ("lines", "field", "expected"),
    [
        # A name that wraps onto a second line, and a registration number after it.
        (
            ["LIAN CHI PU TIAN VEGETARIAN", "RESTAURANT SDN BHD (1095514-X)", "54 JALAN SS23"],
            Field("company", "text"),
            "LIAN CHI PU TIAN VEGETARIAN RESTAURANT SDN BHD",
        ),
        # Handwriting above the printed name is skipped.
        (
            ["tan woon yann", "INDAH GIFT & HOME DECO", "27 JALAN DEDAP"],
            Field("vendor", "text"),
            "INDAH GIFT & HOME DECO",
        ),
        # The address is what follows the name, without registration, date or phone lines.
        (
            [
                "ACME SDN BHD",
                "(C0.REG:704427-T)",
                "LOT 1851-A",
                "43300 SERI KEMBANGAN",
                "03-60570314",
            ],
            Field("address", "address"),
            "LOT 1851-A 43300 SERI KEMBANGAN",
        ),
        # The strongest total label wins; a tax summary's "Total" row does not.
        (
            [
                "Total Qty: 1 29.68",
                "Total Sales (Excluding GST) : 28.00",
                "Total GST : 1.68",
                "Total Sales (Inclusive of GST) : 29.68",
                "GST Summary Amount Tax",
                "Total: 28.00 1.68",
            ],
            Field("total", "currency"),
            "29.68",
        ),
        (["Subtotal 10.00", "Grand Total: $1,234.50"], Field("amount_due", "currency"), "1234.50"),
        (["Amount in EUR", "Total 12,00 €"], Field("currency", "text", "currency code"), "EUR"),
    ],
)
def test_layout_rules(lines: list[str], field: Field, expected: object) -> None:
    assert by_layout("\n".join(lines), field) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Date: 09/02/201811:40", dt.date(2018, 2, 9)),  # OCR glued the time on
        ("ORD#70-REG#19-18/03/201823:02:16", dt.date(2018, 3, 18)),
        ("Date 06/01/1812.17:26PM", dt.date(2018, 1, 6)),
        ("27Mar201818:46", dt.date(2018, 3, 27)),
        ("14/JUN/2017", dt.date(2017, 6, 14)),
        ("Date :25 May 201709:4130", dt.date(2017, 5, 25)),
        ("2024-12-31", dt.date(2024, 12, 31)),
        ("March 5, 2021", dt.date(2021, 3, 5)),
        ("Date:2016/05/0114:11:20", dt.date(2016, 5, 1)),  # year first, time glued on
        ("10~04-2018 08:11:53", dt.date(2018, 4, 10)),  # OCR's tilde for a hyphen
    ],
)
def test_dates_as_printed_and_as_ocr_reads_them(text: str, expected: dt.date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("lines", "field", "expected"),
    [
        # A tax note names the total but holds a rate; a change column holds 0.00.
        (["TOTAL 21.20", "GST @ 6% INCLUDED IN TOTAL"], Field("total", "currency"), "21.20"),
        (["TOTAL CASH CHANGE 55.10 55.10 0.00"], Field("total", "currency"), "55.10"),
        # Spaces separate amounts: three columns, not 5000500050000.
        (["Total 50.00 50.00 50.00 0.00"], Field("total", "currency"), "0.00"),
        (["Tota1 RM 12.90"], Field("total", "currency"), "12.90"),  # OCR's 1 for l
        # A rounding of one cent printed without its zero; a tax note stating the tax.
        (
            ["Total Sales (Inclusive GST) RM 45.34", "Rounding Adjustment RM .01"],
            Field("total", "currency"),
            "45.35",
        ),
        (
            ["Grand Total RM29.30", "(Bill Inclusive of 6% GST :RM1.66)", "Cash RM30.30"],
            Field("total", "currency"),
            "29.30",
        ),
        (["Gesamtbetrag 1.190,00 EUR"], Field("total", "currency"), "1190.00"),
        # `S/B` is a company form, and a name may start with digits.
        (
            ["99 SPEED MART S/B (519537-X)", "LOT P.T 2811, JALAN ANGSA", "TAMAN BERKELEY"],
            Field("company", "text"),
            "99 SPEED MART S/B",
        ),
        # The owner printed under the shop's name is not the issuer.
        (
            ["SANYU STATIONERY SHOP", "NO. 31G, JALAN SETIA", "Owned By:", "SANYU SUPPLY SDN BHD"],
            Field("company", "text"),
            "SANYU STATIONERY SHOP",
        ),
        # OCR's misreadings of S/B, with the registration number marking the name line.
        (
            ["99 SPEED MART S/D (519537-X)", "LOT P.T.2811,JALAN ANGSA", "TAMAN BERKELEY"],
            Field("company", "text"),
            "99 SPEED MART S/B",
        ),
        # No company form at all: the line the registration number follows is the name.
        (
            ["SIMPLIFIED TAX INYOICE", "SIN THYE & CO", "REG.NO:00168397-H", "NO.54, BATU 5"],
            Field("company", "text"),
            "SIN THYE & CO",
        ),
        (
            ["POSTEE", "7 STAR MINI MARKET (519537-X)", "NO 5, JALAN 3/4", "41150 KLANG"],
            Field("company", "text"),
            "7 STAR MINI MARKET",
        ),
        # A name that wraps at `&` or `(`, or over three lines; a branch in parentheses under it.
        (
            ["THE COFFEE BEAN", "& TEA LEAF (M) SDN. BHD.", "Company No. :441970-H", "Lot F36"],
            Field("company", "text"),
            "THE COFFEE BEAN & TEA LEAF (M) SDN. BHD.",
        ),
        (
            ["PASAR RAYA MEGA MAJU", "(SEMENYIH) SDN BHD", "(767840-W)", "NO 24, JALAN 4"],
            Field("company", "text"),
            "PASAR RAYA MEGA MAJU (SEMENYIH) SDN BHD",
        ),
        (
            ["AIK HUAT HARDWARE", "ENTERPRISE (SETIA", "ALAM) SDN BHD", "822737-X", "NO.17-G"],
            Field("company", "text"),
            "AIK HUAT HARDWARE ENTERPRISE (SETIA ALAM) SDN BHD",
        ),
        (
            ["THANK YOU", "CHECKERS HYPERMARKET SDN BHD", "(JALAN KLANG LAMA)", "LOT 2942"],
            Field("company", "text"),
            "CHECKERS HYPERMARKET SDN BHD (JALAN KLANG LAMA)",
        ),
        # OCR's BHD: `Sdn Ehd`, `BHO`; its 0 for O in `CO.`.
        (
            ["Gerbang Alaf Restaurants Sdn Ehd", "(65351-M)", "Level 6, Bangunan TH"],
            Field("company", "text"),
            "Gerbang Alaf Restaurants SDN BHD",
        ),
        (
            ["AEON C0.(M) BHO (126926-H)", "3RD FLR, AEON TAMAN MALURI SC"],
            Field("company", "text"),
            "AEON CO.(M) BHD",
        ),
        # An owner glued by OCR (`OwnedBy:`) is not the shop.
        (
            ["SANYUSTATIONERYSHOP", "NO.31G&33G,JALAN SETIA", "OwnedBy:", "SANYU SUPPLY SDN BHD"],
            Field("company", "text"),
            "SANYUSTATIONERYSHOP",
        ),
        # An item sold is not the seller, though its name says `RESTAURANT`.
        (
            [
                "SANYU SHOP",
                "NO.31G, JALAN SETIA",
                "Owned By:",
                "SANYU SDN BHD",
                "CASH SALES",
                "1.2012-0029 RESTAURANT ORDER CHIT 5.80",
            ],
            Field("company", "text"),
            "SANYU SHOP",
        ),
        # A street number with a slash at the end of an address line is no company form.
        (
            ["KEDAI RUNCIT AH SENG", "NO 12, JALAN SS 5/8", "47300 PETALING JAYA"],
            Field("company", "text"),
            "KEDAI RUNCIT AH SENG",
        ),
        # OCR's look-alikes in an address: O for 0 in numbers, 0 for O in words.
        (
            ["MR. D.I.Y. (M) SDN BHD", "L0T 1851-A, JALAN KPB 6", "433O0 SERI KEMBANGAN"],
            Field("address", "address"),
            "LOT 1851-A, JALAN KPB 6 43300 SERI KEMBANGAN",
        ),
        # The issuer of an invoice: its title, its return address, its web address, its payee.
        (
            ["Amazon Web Services Invoice", "Invoice Number: 4218"],
            Field("issuer", "text"),
            "Amazon Web Services",
        ),
        (
            ["Pino Bluebird", "QualityHosting AG - Uferweg 40-42 - D-63571 Gelnhausen"],
            Field("issuer", "text"),
            "QualityHosting AG",
        ),
        (
            [
                "Shipping Address",
                "Anushrut Singh",
                "Flipkart.com Customer Care",
                "www.flipkart.com",
            ],
            Field("issuer", "text"),
            "Flipkart",
        ),
        (
            ["ALEXINUX", "Virement BRED - Titulaire du compte : NETPRESSE"],
            Field("issuer", "text"),
            "NETPRESSE",
        ),
    ],
)
def test_layout_causes_of_past_errors(lines: list[str], field: Field, expected: object) -> None:
    assert by_layout("\n".join(lines), field) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("25Mar 2018", dt.date(2018, 3, 25)),  # OCR glued the day and the month
        ("16 May2018", dt.date(2018, 5, 16)),
        ("HA06HD01-3-70 1 x 12.00 Date: 02/01/2019", dt.date(2019, 1, 2)),  # not 1970
        ("C021027729/2/2017 12:00PM", dt.date(2017, 2, 9)),  # glued to a number before it
        ("7. Mai 2014", dt.date(2014, 5, 7)),
        ("Factuurdatum: 19 april 2014", dt.date(2014, 4, 19)),
        ("du 02 Juillet 2015", dt.date(2015, 7, 2)),
        ("3 de febrero de 2026", dt.date(2026, 2, 3)),
        ("Invoice Date: August 3 , 2014", dt.date(2014, 8, 3)),
    ],
)
def test_more_dates_as_printed_and_as_ocr_reads_them(text: str, expected: dt.date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("value", "day_first", "expected"),
    [
        ("27/03/2018", True, "2018-03-27"),
        ("03/27/2018", True, "2018-03-27"),  # only one order reads it
        ("03/08/2014", True, "2014-08-03"),
        ("03/08/2014", False, "2014-03-08"),
        ("2014-03-08", False, "2014-03-08"),
        ("August 3, 2014", True, "2014-08-03"),
    ],
)
def test_a_plain_date_is_given_as_iso_8601(value: str, day_first: bool, expected: str) -> None:
    assert normalise(value, "date", day_first=day_first) == expected


@pytest.mark.parametrize(
    ("text", "day_first"),
    [
        ("Invoice date 03/08/2014\nDue 25/08/2014", True),
        ("Invoice date 03/08/2014\nDue 08/25/2014", False),
        ("Invoice date 03/08/2014", True),  # nothing says: day first
        ("Ordered 3/15/2021, shipped 3/16/2021, paid 17/03/2021", False),  # most say
    ],
)
def test_the_documents_date_order_is_read_from_its_unambiguous_dates(
    text: str, day_first: bool
) -> None:
    assert day_first_in(text) is day_first


async def test_a_plain_date_field_follows_the_documents_order() -> None:
    """A US invoice writes 03/08/2014 for March 8th; its other date (08/25/2014) says so."""
    us = text_pdf(["Invoice Date: 03/08/2014", "Due Date: 08/25/2014", "Total: 10.00"])
    eu = text_pdf(["Invoice Date: 03/08/2014", "Due Date: 25/08/2014", "Total: 10.00"])
    fields = [Field("invoice_date", "date"), Field("due_date", "date")]
    for pdf, expected in [(us, ("2014-03-08", "2014-08-25")), (eu, ("2014-08-03", "2014-08-25"))]:
        got = await OfflineExtractor().extract(
            ExtractionRequest(fields, DEFAULT_TYPES, [document(pdf, "application/pdf")])
        )
        assert (got.values["invoice_date"], got.values["due_date"]) == expected


def test_a_date_inside_an_item_code_is_no_date() -> None:
    with pytest.raises(InvalidValue):
        parse_date("HA06HD01-3-70")


@pytest.mark.parametrize(
    ("value", "data_type", "expected"),
    [
        ("RM 30.90", "currency", "30.90"),  # the document's decimals are kept
        (30.9, "currency", "30.90"),  # a model's number is money: two decimals
        ("1.234,50 €", "currency", "1234.50"),
        ("(12.00)", "currency", "-12.00"),
        ("Rs 1939", "currency", "1939"),
        ("50.00 50.00 50.00 0.00", "number", 50.0),  # never 5000500050000
        ("1 234,56", "number", 1234.56),  # a European thousands space
        ("Qty 1 250.00", "number", 1.0),  # but not between a count and a price
        ("1.5e3", "number", 1500.0),  # E notation, as a model writes a number, read whole
        (" -2.5E-1 ", "percentage", -0.25),
        ("1e3", "integer", 1000),
        ("1.5e3", "currency", "1500.00"),
        ("1e3", "text", "1e3"),  # text stays as written
    ],
)
def test_numbers_and_amounts(value: object, data_type: str, expected: object) -> None:
    assert normalise(value, data_type) == expected


@pytest.mark.parametrize("data_type", ["number", "currency", "percentage", "integer", "text"])
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_model_number_past_json_is_unreadable(value: float, data_type: str) -> None:
    """Python reads a model's 1e400 as infinity and its NaN as NaN: unreadable values (None
    with a note), never a value the jobs service refuses or an OverflowError."""
    with pytest.raises(InvalidValue, match="not a number a document holds"):
        normalise(value, data_type)


@pytest.mark.parametrize("data_type", ["number", "currency", "percentage", "integer"])
@pytest.mark.parametrize("value", ["1e400", "-1E400", "1.0e999"])
def test_a_number_past_json_written_as_text_is_unreadable(value: str, data_type: str) -> None:
    """'1e400' as text is no number a document holds either: it read as 1, its mantissa."""
    with pytest.raises(InvalidValue, match="not a number a document holds"):
        normalise(value, data_type)
