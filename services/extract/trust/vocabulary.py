"""Words that documents like the calibration set print: a misread name shows itself by a
word no other document has.

OCR can be sure of a wrong reading (`TIHES BOOKSTORES` at 0.88, `SANYU STATONERY SHOP`
at 0.95), so its own score does not catch it; but a misread word is one no other receipt
prints, while the words of right names and addresses (`JALAN`, `TAMAN`, `SDN`,
`HARDWARE`, a chain's name) recur across documents. The familiar words are those printed
on at least MIN_DOCUMENTS of the training receipts (their OCR text, not their labels: the
platform sees text, never labels), written beside this module as `vocabulary.json` by
`bench/fit_confidence.py`; the share of a value's words outside it is a confidence signal.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterable, Set
from pathlib import Path

VOCABULARY = Path(__file__).with_name("vocabulary.json")
# A word on one document only may be that document's own misreading.
MIN_DOCUMENTS = 2
# Shorter runs of letters (`RM`, `NO`, a unit) say little about spelling.
_WORD = re.compile(r"[^\W\d_]{3,}")


def words(text: str) -> list[str]:
    """The words of `text` that can be misspelt: runs of three or more letters, folded."""
    return [w.casefold() for w in _WORD.findall(text)]


def familiar_words(
    documents: Iterable[Set[str]], min_documents: int = MIN_DOCUMENTS
) -> frozenset[str]:
    """The words printed on at least `min_documents` of `documents` (each a set of words)."""
    counts: Counter[str] = Counter()
    for document in documents:
        counts.update(document)
    return frozenset(w for w, n in counts.items() if n >= min_documents)


def unfamiliar(value: str, known: Set[str]) -> float:
    """The share of the value's words not in `known`, in [0, 1]; 0 for a value without
    words (`99`, `S/B`)."""
    found = words(value)
    if not found:
        return 0.0
    return sum(w not in known for w in found) / len(found)


@functools.cache
def known_words(path: Path = VOCABULARY) -> frozenset[str]:
    """The shipped vocabulary (empty before the first fit has written it)."""
    if not path.exists():
        return frozenset()
    loaded: list[str] = json.loads(path.read_text())["words"]
    return frozenset(loaded)
