"""The confidence model's signals beyond verification: words no other receipt prints (a
name or address OCR read confidently but wrong), OCR's expected misreads over the quote, a
total of zero, and the cross-fitting that keeps the vocabulary's training values honest."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.fit_confidence import cross_fitted, vocabulary
from bench.trust_data import Labelled
from services.extract.base import Evidence
from services.extract.reading.pages import PageText
from services.extract.schema import Field
from services.extract.trust.confidence import Signals, confidence, signals
from services.extract.trust.evidence import Check, verify
from services.extract.trust.vocabulary import familiar_words, known_words, unfamiliar, words

COMPANY = Field("company", "text", "the company (seller) that issued the receipt")
ADDRESS = Field("address", "address", "the seller's address")
TOTAL = Field("total", "currency", "the total amount paid")
# Found by layout, quote verified, printed once: only the value's own words differ.
CHECK = Check(quote_found=True, holds=1.0, page=1, box=None, ocr_min=0.97)


def test_words_are_folded_runs_of_three_letters_or_more() -> None:
    assert words("No.12, JALAN SS2/7 Taman-Jaya RM") == ["jalan", "taman", "jaya"]


def test_unfamiliar_is_the_share_of_words_outside_the_vocabulary() -> None:
    assert unfamiliar("No.12 JALAN Xyzzy", {"jalan"}) == 0.5
    assert unfamiliar("JALAN TAMAN", {"jalan", "taman"}) == 0.0
    assert unfamiliar("99 S/B", {"jalan"}) == 0.0  # no words to misspell


def test_a_word_is_familiar_once_two_documents_print_it() -> None:
    known = familiar_words([{"jalan", "kedai"}, {"jalan", "tihes"}, {"jalan", "kedai"}])
    assert known == {"jalan", "kedai"}  # `tihes` is one document's own (mis)reading


def test_the_shipped_vocabulary_holds_what_receipts_print() -> None:
    known = known_words()
    assert {"jalan", "taman", "sdn", "bhd", "total"} <= known
    assert "tihes" not in known


def test_a_misread_word_lowers_the_confidence_of_a_name_or_address() -> None:
    """OCR sure of `STATONERY` scores like the right spelling on every other signal; a word
    no other receipt prints is what tells them apart."""
    for field, right, misread in (
        (COMPANY, "SANYU STATIONERY SDN BHD", "SANYU STATONERY SDN BHD"),
        (ADDRESS, "NO 12 JALAN TAMAN 47500 SUBANG", "NO 12 JXLAN TQMAN 47500 SUBANG"),
    ):
        good = signals(field, right, "layout", CHECK, 1)
        bad = signals(field, misread, "layout", CHECK, 1)
        assert bad.unfamiliar > good.unfamiliar
        assert bad.features()[f"unfamiliar:{good.kind}"] == bad.unfamiliar
        assert confidence(bad) < confidence(good)
    # Other kinds are not judged by their words: an invoice number is no word.
    assert signals(Field("n", "text", "invoice number"), "XQZW", "label", CHECK, 1).unfamiliar == 0


def test_a_zero_total_lowers_confidence() -> None:
    """`TOTAL 6-00` read as 0: a total of nothing is a misreading far more often than not."""
    zero = signals(TOTAL, "0.00", "layout", CHECK, 1)
    six = signals(TOTAL, "6.00", "layout", CHECK, 1)
    assert zero.features()["amount:zero"] == 1.0
    assert six.features()["amount:zero"] == 0.0
    assert confidence(zero) < confidence(six)
    assert signals(TOTAL, "-1.73", "layout", CHECK, 1).features()["amount:zero"] == 0.0


def test_ocr_expects_more_misreads_in_a_longer_quote_read_as_well() -> None:
    """Every character OCR read at 0.95 is wrong one time in twenty: the sum of the doubt
    over the quote, not its lowest run, is what a long address risks."""
    short, long = "NO 12 JALAN", "NO 12 JALAN TAMAN BUKIT 47500 SUBANG JAYA SELANGOR"
    text = f"{short}\n{long}"
    scores = tuple(None if ch.isspace() else 0.95 for ch in text)
    pages = {"d": [PageText(1, text, (None,) * len(text), scores)]}
    few = verify(Evidence("d", 1, short), short, ADDRESS, pages)
    many = verify(Evidence("d", 1, long), long, ADDRESS, pages)
    assert few.ocr_min == many.ocr_min == pytest.approx(0.95)
    assert few.ocr_misreads == pytest.approx(0.05 * sum(not c.isspace() for c in short))
    assert many.ocr_misreads == pytest.approx(0.05 * sum(not c.isspace() for c in long))
    found = signals(ADDRESS, long, "layout", many, 1)
    assert found.features()["ocr:misreads"] == pytest.approx(many.ocr_misreads)
    # The same value, had OCR expected as few misreads in it as in the short quote.
    assert confidence(found) < confidence(replace(found, ocr_misreads=few.ocr_misreads))
    # A text layer is given, not read: no OCR, no feature.
    plain = {"d": [PageText(1, text, (None,) * len(text))]}
    assert verify(Evidence("d", 1, long), long, ADDRESS, plain).ocr_misreads is None
    assert "ocr:misreads" not in signals(ADDRESS, long, "layout", CHECK, 1).features()


def _row(document: str, value: str, printed: set[str]) -> Labelled:
    found = Signals("organisation", "layout", False, True, 1.0, False, value, 0.97, 0.0)
    return Labelled(document, "company", found, True, frozenset(printed))


def test_cross_fitting_keeps_a_values_own_document_out_of_its_vocabulary() -> None:
    """A training value's words are judged by the other folds' documents only, as an unseen
    document's are in production: its own document would make every word it prints
    familiar."""
    rows = [
        _row("a", "KEDAI JALAN", {"kedai", "jalan"}),
        _row("b", "KEDAI", {"kedai", "jalan"}),
        _row("c", "X", {"jalan"}),
        _row("d", "Y", {"jalan"}),
    ]
    assert "kedai" in vocabulary(rows)  # printed on a and b
    # Two folds: a and c, b and d. `kedai` is on b alone outside a's fold; `jalan` on b, d.
    honest = {r.document: r.signals.unfamiliar for r in cross_fitted(rows, folds=2)}
    assert honest["a"] == pytest.approx(0.5)
    assert honest["b"] == 1.0
    # In sample, the same value would look familiar.
    assert unfamiliar("KEDAI JALAN", vocabulary(rows)) == 0.0
    # Kinds the vocabulary does not judge are left as they are.
    total = replace(rows[0], signals=replace(rows[0].signals, kind="amount", value="5.00"))
    assert cross_fitted([total, *rows[1:]], folds=2)[0] == total
