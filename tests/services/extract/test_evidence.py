"""Evidence per value and its verification: the offline extractor cites where it read each
value (text layer with character boxes, OCR with run boxes), Gemini is asked for page and
quote, and the platform checks every quote against the document's own text."""

from __future__ import annotations

import difflib
import functools
import io
import random
from dataclasses import replace

import pytest

from services.extract import DEFAULT_TYPES, Document, ExtractionRequest, Field, OfflineExtractor
from services.extract.base import Evidence
from services.extract.model.gemini import EVIDENCE_KEY, GeminiExtractor
from services.extract.reading.pages import PageText, document_pages
from services.extract.trust.assess import assess, read_pages
from services.extract.trust.confidence import (
    Signals,
    confidence,
    ocr_doubt,
    review_threshold,
    signals,
)
from services.extract.trust.evidence import (
    CLOSE_ENOUGH,
    MAX_FUZZY,
    closeness,
    fold,
    holds,
    occurrences,
    verify,
)
from services.jobs.domain.results.review import needs_review
from tests.gemini_standin import API_KEY, Reply, RunningStandIn
from tests.pdfs import text_pdf
from tests.services.extract.test_offline import receipt_png

INVOICE = [
    "ACME TRADING SDN BHD",
    "Invoice Number: INV-2024-0042",
    "Date: 12/03/2024",
    "Subtotal: 90.00",
    "Total due: 99.00",
]
FIELDS = [
    Field("invoice_number", "text", "the invoice number"),
    Field("date", "date_dmy"),
    Field("total", "currency", "the total due"),
]


def pdf_document(lines: list[str], name: str = "jobs/j/files/f1") -> Document:
    data = text_pdf(lines)
    return Document(name, "a/invoice.pdf", "application/pdf", functools.partial(io.BytesIO, data))


def page(text: str) -> PageText:
    return PageText(1, text, (None,) * len(text))


async def test_offline_values_cite_the_line_and_box_they_were_read_from() -> None:
    document = pdf_document(INVOICE)
    request = ExtractionRequest(FIELDS, DEFAULT_TYPES, [document])
    found = await OfflineExtractor().extract(request)
    assert found.values == {
        "invoice_number": "INV-2024-0042",
        "date": "12/03/2024",
        "total": "99.00",
    }
    cited = found.evidence
    assert cited["invoice_number"].quote == "INV-2024-0042"
    assert cited["total"].quote == "Total due: 99.00"  # the line naming the field, not Subtotal
    assert {c.page for c in cited.values()} == {1}
    assert {c.document for c in cited.values()} == {document.name}
    boxes = {name: c.box for name, c in cited.items()}
    for box in boxes.values():
        assert box is not None
        assert 0 <= box.left < box.right <= 1
        assert 0 <= box.top < box.bottom <= 1
    # Printed top to bottom: the number's box is above the date's, the date's above the total's.
    assert boxes["invoice_number"].bottom <= boxes["date"].top  # type: ignore[union-attr]
    assert boxes["date"].bottom <= boxes["total"].top  # type: ignore[union-attr]

    # The platform's check agrees: every value verified, confidence a probability.
    assessed = assess(FIELDS, found.values, found, await read_pages([document]))
    for name, assessment in assessed.items():
        assert assessment.verified, name
        assert 0.0 <= assessment.confidence <= 1.0
        assert assessment.evidence.file == document.name
        assert assessment.evidence.page == 1
        assert assessment.evidence.HasField("box")


async def test_ocr_text_carries_the_boxes_of_its_runs() -> None:
    data = receipt_png(["ACME TRADING SDN BHD", "TOTAL RM 60.31"])
    document = Document("f", "r.png", "image/png", functools.partial(io.BytesIO, data))
    [ocr] = await document_pages(document)
    at = ocr.text.index("60.31")
    box = ocr.box_of(at, at + 5)
    assert box is not None
    # The second of two lines on an image 200 px high: in its lower half.
    assert 0.5 < box.top < box.bottom <= 1.0
    top_line = ocr.box_of(0, 4)
    assert top_line is not None
    assert top_line.bottom <= box.top
    # Read once: the verifier reuses what the extractor read.
    assert await document_pages(document) == [ocr]


async def test_ocr_text_carries_the_recognition_score_of_its_runs() -> None:
    """Every OCR-read character has its run's score; the separators OCR did not read have
    none, and neither has a text layer, which is given, not read."""
    data = receipt_png(["ACME TRADING SDN BHD", "TOTAL RM 60.31"])
    document = Document("f", "r.png", "image/png", functools.partial(io.BytesIO, data))
    [ocr] = await document_pages(document)
    assert len(ocr.scores) == len(ocr.text)
    for ch, score in zip(ocr.text, ocr.scores, strict=True):
        if ch == "\n":
            assert score is None
        elif not ch.isspace():
            assert score is not None
            assert 0.5 < score <= 1.0  # clean print: OCR is sure of it
    at = ocr.text.index("60.31")
    assert ocr.scores_of(at, at + 5)
    [layer] = await document_pages(pdf_document(INVOICE))
    assert layer.scores_of(0, len(layer.text)) == []


def test_verification_reports_ocr_doubt_over_the_quoted_runs() -> None:
    """The check carries the lowest and mean OCR score of the runs the quote was found in,
    and the confidence model turns a doubtful reading into a feature."""
    text = "JELSN S5 15\nTOTAL 9.00"
    scores = (0.6,) * 5 + (None,) + (0.9,) * 5 + (None,) + (0.99,) * 10
    pages = {"d": [PageText(1, text, (None,) * len(text), scores)]}
    field = Field("company", "text", "the company")
    check = verify(Evidence("d", 1, "JELSN S5 15"), "JELSN S5 15", field, pages)
    assert check.verified
    assert check.ocr_min == pytest.approx(0.6)
    assert check.ocr_mean == pytest.approx(0.75)
    total = verify(Evidence("d", 1, "TOTAL 9.00"), "9.00", Field("t", "currency"), pages)
    assert total.ocr_min == pytest.approx(0.99)
    # Not OCR: no score, no OCR feature.
    plain = {"d": [page(text)]}
    assert verify(Evidence("d", 1, "TOTAL 9.00"), "9.00", field, plain).ocr_min is None
    found = signals(field, "JELSN S5 15", "layout", check, 1)
    assert found.features()["ocr:doubt"] == pytest.approx(ocr_doubt(0.6)) == 1.0
    sure = signals(field, "JELSN S5 15", "layout", replace(check, ocr_min=1.0), 1)
    assert sure.features()["ocr:doubt"] == 0.0
    assert (
        "ocr:doubt" not in signals(field, "X", "layout", replace(check, ocr_min=None), 1).features()
    )


async def test_a_fabricated_quote_is_caught(gemini: RunningStandIn) -> None:
    """Gemini cites page + quote; the platform finds the real one and refuses the made-up one
    and the real one that does not hold the value."""
    gemini.state.script(
        Reply(
            values={
                "invoice_number": "INV-2024-0042",
                "date": "12/03/2024",
                "total": "120.00",
                EVIDENCE_KEY: {
                    "invoice_number": {"page": 1, "quote": "invoice number:  INV-2024-0042"},
                    "date": {"page": 1, "quote": "Subtotal: 90.00"},
                    "total": {"page": 1, "quote": "Total due: 120.00"},
                },
            }
        )
    )
    document = pdf_document(INVOICE)
    extractor = GeminiExtractor(api_key=API_KEY, model="gemini-test", base_url=gemini.base_url)
    async with extractor:
        found = await extractor.extract(ExtractionRequest(FIELDS, DEFAULT_TYPES, [document]))
    [seen] = gemini.state.seen
    assert EVIDENCE_KEY in seen.schema["required"]
    assert found.evidence["total"] == Evidence(document.name, 1, "Total due: 120.00")

    assessed = assess(FIELDS, found.values, found, await read_pages([document]))
    real, wrong_line, fabricated = (
        assessed["invoice_number"],
        assessed["date"],
        assessed["total"],
    )
    assert real.verified
    assert real.evidence.box.bottom > 0  # the platform located the quote on the page
    assert not wrong_line.verified  # in the document, but the date cannot be read from it
    assert not fabricated.verified  # nowhere in the document
    assert not fabricated.evidence.HasField("box")
    assert fabricated.confidence < real.confidence
    # Unverified: it needs review whatever its confidence.
    stored = {"confidence": fabricated.confidence, "verified": fabricated.verified}
    assert needs_review(stored, found.values["total"], review_threshold())


async def test_a_missing_or_malformed_citation_leaves_the_value_unverified(
    gemini: RunningStandIn,
) -> None:
    gemini.state.script(
        Reply(
            values={
                "invoice_number": "INV-2024-0042",
                "date": None,
                "total": "99.00",
                EVIDENCE_KEY: {"invoice_number": "page one", "total": {"page": "x", "quote": 5}},
            }
        )
    )
    document = pdf_document(INVOICE)
    extractor = GeminiExtractor(api_key=API_KEY, model="gemini-test", base_url=gemini.base_url)
    async with extractor:
        found = await extractor.extract(ExtractionRequest(FIELDS, DEFAULT_TYPES, [document]))
    assert found.evidence == {}
    assessed = assess(FIELDS, found.values, found, await read_pages([document]))
    assert not assessed["invoice_number"].verified
    assert not assessed["total"].verified
    assert not assessed["date"].verified  # empty: nothing to verify


def test_folding_forgives_case_spacing_punctuation_and_ocr_confusions() -> None:
    text = page("TOTAL  RM 1O.00\nINV0ICE No: A-l23")
    field = Field("invoice_number", "text")
    for quote in ("invoice no a-123", "Inv0ice  No:A-l23", "total rm 10.00"):
        check = verify(Evidence("d", 1, quote), "A-123", field, {"d": [text]})
        assert check.quote_found, quote
    # Inside a word is not a quote: `9.00` is not found in `19.00`.
    assert not verify(Evidence("d", 1, "9.00"), "9.00", field, {"d": [page("19.00")]}).quote_found
    assert fold("Déjà Vu").text == fold("DEJA vu").text


def test_a_quote_on_another_page_or_document_than_cited() -> None:
    pages = {"d1": [page("nothing here"), PageText(2, "Total 5.00", (None,) * 10)]}
    field = Field("total", "currency")
    check = verify(Evidence("d1", 1, "Total 5.00"), "5.00", field, pages)
    assert check.verified
    assert check.page == 2  # the page it is really on
    # Cited against a document that does not hold it: not verified.
    pages["d2"] = [page("other")]
    assert not verify(Evidence("d2", 1, "Total 5.00"), "5.00", field, pages).verified


@pytest.mark.parametrize(
    ("quote", "value", "data_type", "held"),
    [
        ("Total: RM 1,234.50", "1234.50", "currency", True),
        ("Total: RM 1,234.50", "1234.00", "currency", False),
        ("Date 27/03/2018 18:46", "27/03/2018", "date_dmy", True),
        ("Date 27/03/2018", "28/03/2018", "date_dmy", False),
        # A plain date may have been read either way round; a quote of another date may not.
        ("Due 03/08/2014", "2014-08-03", "date", True),
        ("Due 03/08/2014", "2014-03-08", "date", True),
        ("Due 03/08/2014", "2014-08-04", "date", False),
        ("VAT 20%", 20.0, "percentage", True),
        ("ACME TRADING SDN. BHD.", "ACME TRADING SDN BHD", "text", True),
        ("ACME TRADING", "BETA STORES", "text", False),
        ("Total $ 4.11", "USD", "text", True),
        ("Total 4.11 €", "USD", "text", False),
    ],
)
def test_a_quote_holds_the_value(quote: str, value: object, data_type: str, held: bool) -> None:
    assert (holds(quote, value, Field("x", data_type)) > 0) is held  # type: ignore[arg-type]


def test_closeness_is_difflibs_ratio_past_the_threshold() -> None:
    """The bounds checked first change no answer: on pairs from unlike to one letter apart,
    closeness is the ratio when at least CLOSE_ENOUGH and 0 otherwise."""
    rng = random.Random(7)
    for _ in range(500):
        a = "".join(rng.choice("abc01 ") for _ in range(rng.randint(1, 60)))
        b = list(
            a[: rng.randint(0, len(a))]
            + "".join(rng.choice("abc") for _ in range(rng.randint(0, 20)))
        )
        for _ in range(rng.randint(0, 3)):
            if b:
                b[rng.randrange(len(b))] = rng.choice("xyz")
        ratio = difflib.SequenceMatcher(None, a, "".join(b), autojunk=False).ratio()
        assert closeness(a, "".join(b)) == (ratio if ratio >= CLOSE_ENOUGH else 0.0)


def test_a_long_value_is_never_compared_in_full_with_unlike_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 5,000-character value against each of 1,000 lines and against a 200,000-character
    quote: every comparison is settled by the lengths or the letters (difflib's full ratio,
    time in the product of the lengths, blocked the worker for minutes), and the value
    printed whole on a line is still found there."""
    full = difflib.SequenceMatcher.ratio
    calls = 0

    def counted(self: difflib.SequenceMatcher[str]) -> float:
        nonlocal calls
        calls += 1
        return full(self)

    monkeypatch.setattr(difflib.SequenceMatcher, "ratio", counted)
    rng = random.Random(3)
    value = " ".join("".join(rng.choice("abcdefgh") for _ in range(9)) for _ in range(500))
    lines = ["".join(rng.choice("abcdefgh ") for _ in range(80)) for _ in range(999)]
    pages = [page("\n".join([*lines, value]))]
    field = Field("notes", "text")
    assert occurrences(value, field, pages) == 1
    cited = Evidence(document="d", page=1, quote=value[:2500] + "q" * 200_000)
    assert verify(cited, value, field, {"d": pages}).holds == 0.0
    assert calls == 0
    # Two long texts alike but for a letter are not a match by similarity either.
    assert closeness("a" * (MAX_FUZZY + 1), "a" * MAX_FUZZY + "b") == 0.0


def test_confidence_is_a_probability_and_rewards_verification() -> None:
    base = {"kind": "amount", "method": "layout", "empty": False, "repeated": True, "value": "9"}
    verified = confidence(Signals(quote_found=True, holds=1.0, **base))  # type: ignore[arg-type]
    unverified = confidence(Signals(quote_found=False, holds=0.0, **base))  # type: ignore[arg-type]
    assert 0.0 <= unverified < verified <= 1.0
    for kind in ("amount", "date", "address", "organisation", "text"):
        for method in ("layout", "label", "first_date", "anywhere", "model"):
            for empty in (True, False):
                for ocr in (None, 0.0, 0.5, 0.9, 1.0):
                    found = Signals(
                        kind, method, empty, not empty, float(not empty), False, "x 9", ocr
                    )
                    assert 0.0 <= confidence(found) <= 1.0


def test_the_jobs_service_default_threshold_is_the_fitted_one() -> None:
    """bench/fit_confidence.py writes the threshold; the setting's default must follow it."""
    from bytereview.core.settings import Settings

    assert Settings(env="dev").review_confidence_threshold == review_threshold()
