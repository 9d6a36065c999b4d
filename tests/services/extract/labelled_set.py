"""A small set of generated invoices with known answers for the user's own labelled fields.

Several layouts (label: value, label over value, a block of labels after a block of
values, a table header over its row) and several languages' labels, dates and number
formats. Fields a document does not print are expected as None: the extractor must not
answer them with a neighbour's value. Used by the suite (tests/services/extract/
test_labels.py) and reported per field by `python -m bench.extract_accuracy --set own`.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.extract.schema import Field, JsonValue

FIELDS = [
    Field("invoice_number", "text", "the invoice number"),
    Field("invoice_date", "date_ymd", "the invoice date"),
    Field("due_date", "date_ymd", "the payment due date"),
    Field("po_number", "text", "the purchase order number"),
    Field("customer_number", "text", "our customer number at the supplier"),
    Field("vat", "currency", "the VAT amount"),
    Field("total", "currency", "the total amount due"),
    Field("iban", "text", "the supplier's IBAN"),
]


@dataclass(frozen=True)
class Sample:
    name: str
    lines: list[str]
    expected: dict[str, JsonValue]


SAMPLES = [
    Sample(
        "english-colons",
        [
            "ACME Supplies Ltd",
            "1 High Street, Leeds LS1 4AB",
            "INVOICE",
            "Invoice No: ACME-2026-0042",
            "Invoice Date: 14/02/2026",
            "Due Date: 16/03/2026",
            "PO Number: PO-7781",
            "Customer No.: C-1042",
            "Description Qty Price Amount",
            "Widgets 2 15.45 30.90",
            "Subtotal 30.90",
            "VAT 20% 6.18",
            "Total due 37.08",
            "IBAN: GB82 WEST 1234 5698 7654 32",
        ],
        {
            "invoice_number": "ACME-2026-0042",
            "invoice_date": "2026-02-14",
            "due_date": "2026-03-16",
            "po_number": "PO-7781",
            "customer_number": "C-1042",
            "vat": "6.18",
            "total": "37.08",
            "iban": "GB82WEST12345698765432",
        },
    ),
    Sample(
        "german",
        [
            "Muster Technik GmbH - Hauptstr. 5 - 10115 Berlin",
            "Rechnung",
            "Rechnungsnummer: RE-2026-117",
            "Rechnungsdatum: 5. März 2026",
            "Kundennummer: 40021",
            "Fällig am: 19.03.2026",
            "Pos. Menge Beschreibung Betrag",
            "1 10 Kabel 1.000,00 EUR",
            "Nettobetrag 1.000,00 EUR",
            "MwSt. 19 % 190,00 EUR",
            "Gesamtbetrag 1.190,00 EUR",
            "Bankverbindung: Commerzbank",
            "IBAN DE89 3704 0044 0532 0130 00",
        ],
        {
            "invoice_number": "RE-2026-117",
            "invoice_date": "2026-03-05",
            "due_date": "2026-03-19",
            "po_number": None,
            "customer_number": "40021",
            "vat": "190.00",
            "total": "1190.00",
            "iban": "DE89370400440532013000",
        },
    ),
    Sample(
        "french",
        [
            "Dupont et Fils SARL",
            "Facture n° F-2026-031",
            "Date : 12/01/2026",
            "Date d'échéance : 11/02/2026",
            "N° client : CL-889",
            "Bon de commande : BC-5512",
            "Total HT 250,00 €",
            "TVA 20 % 50,00 €",
            "Total TTC 300,00 €",
            "IBAN : FR14 2004 1010 0505 0001 3M02 606",
        ],
        {
            "invoice_number": "F-2026-031",
            "invoice_date": "2026-01-12",
            "due_date": "2026-02-11",
            "po_number": "BC-5512",
            "customer_number": "CL-889",
            "vat": "50.00",
            "total": "300.00",
            "iban": "FR1420041010050500013M02606",
        },
    ),
    Sample(
        "dutch",
        [
            "Bakker Groothandel B.V.",
            "FACTUUR",
            "Factuurnummer: 2026-0193",
            "Factuurdatum: 7 januari 2026",
            "Vervaldatum: 21-01-2026",
            "Klantnummer: 55123",
            "Subtotaal € 200,00",
            "BTW 21% € 42,00",
            "Totaal € 242,00",
            "IBAN NL91 ABNA 0417 1643 00",
        ],
        {
            "invoice_number": "2026-0193",
            "invoice_date": "2026-01-07",
            "due_date": "2026-01-21",
            "po_number": None,
            "customer_number": "55123",
            "vat": "42.00",
            "total": "242.00",
            "iban": "NL91ABNA0417164300",
        },
    ),
    Sample(
        "us-hash-labels",
        [
            "Pioneer Tools Inc.",
            "INVOICE # 10234",
            "DATE: March 5, 2026",
            "P.O. #: 4500012345",
            "Customer ID: 889-221",
            "Payment due: April 4, 2026",
            "Subtotal $100.00",
            "Sales Tax (8.25%) $8.25",
            "TOTAL $108.25",
        ],
        {
            "invoice_number": "10234",
            "invoice_date": "2026-03-05",
            "due_date": "2026-04-04",
            "po_number": "4500012345",
            "customer_number": "889-221",
            "vat": "8.25",
            "total": "108.25",
            "iban": None,
        },
    ),
    Sample(
        "labels-over-values",
        [
            "Northwind Traders Ltd",
            "Invoice Number:",
            "NW-3310",
            "Invoice Date:",
            "2026-04-02",
            "Due Date:",
            "2026-05-02",
            "Amount",
            "Services 1,250.00",
            "Tax 15% on $ 1,250.00 $ 187.50",
            "Total $ 1,437.50",
        ],
        {
            "invoice_number": "NW-3310",
            "invoice_date": "2026-04-02",
            "due_date": "2026-05-02",
            "po_number": None,
            "customer_number": None,
            "vat": "187.50",
            "total": "1437.50",
            "iban": None,
        },
    ),
    Sample(
        "label-block-after-value-block",
        [
            "Riverside Repairs LLC",
            "INVOICE",
            "# RR-2026-7",
            "Jan 1, 2026",
            "Jan 31, 2026",
            "po_991",
            "$127.50",
            "Date:",
            "Due Date:",
            "PO Number:",
            "Balance Due:",
        ],
        {
            "invoice_number": "RR-2026-7",
            "invoice_date": "2026-01-01",
            "due_date": "2026-01-31",
            "po_number": "po_991",
            "customer_number": None,
            "vat": None,
            "total": "127.50",
            "iban": None,
        },
    ),
    Sample(
        "table-header-row",
        [
            "Global Parts Corp",
            "Invoice Number Date Customer ID",
            "GP-5512 02/04/2026 CU-77",
            "Item Qty Amount",
            "Bolts 100 12.00",
            "Grand Total 12.00",
        ],
        {
            "invoice_number": "GP-5512",
            "invoice_date": "2026-04-02",
            "due_date": None,
            "po_number": None,
            "customer_number": "CU-77",
            "vat": None,
            "total": "12.00",
            "iban": None,
        },
    ),
    Sample(
        # Everything a careless matcher would borrow: an order number (not a PO), an
        # account number (not an IBAN), a VAT registration number (not a VAT amount),
        # the invoice date (not a due date).
        "absent-fields",
        [
            "Harbour Books Ltd",
            "VAT Reg No: GB 123 4567 89",
            "Invoice: HB-0005",
            "Date: 09/06/2026",
            "Order No: 88123",
            "Account number: 12345678 Sort code: 12-34-56",
            "Books 3 x 10.00 30.00",
            "Total 30.00",
            "Prices include VAT at 0%",
        ],
        {
            "invoice_number": "HB-0005",
            "invoice_date": "2026-06-09",
            "due_date": None,
            "po_number": None,
            "customer_number": None,
            "vat": None,
            "total": "30.00",
            "iban": None,
        },
    ),
    Sample(
        "spanish",
        [
            "Suministros Ibéricos S.L.",
            "Factura nº: A-2026-15",
            "Fecha: 3 de febrero de 2026",
            "Fecha de vencimiento: 05/03/2026",
            "Base imponible 100,00 €",
            "IVA 21%: 21,00 €",
            "Total: 121,00 €",
            "IBAN ES91 2100 0418 4502 0005 1332",
        ],
        {
            "invoice_number": "A-2026-15",
            "invoice_date": "2026-02-03",
            "due_date": "2026-03-05",
            "po_number": None,
            "customer_number": None,
            "vat": "21.00",
            "total": "121.00",
            "iban": "ES9121000418450200051332",
        },
    ),
]
