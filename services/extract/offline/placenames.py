"""Malaysian address words as OCR misreads them: `Kuala Lunpur`, `SELAMGOR`, `Jaian`, `Ma11`.

The receipts the offline rules read are Malaysian, and their addresses are spelled with a
small stock of words: the states and federal territories, large towns, the words for a
street, an estate or a building. OCR drops, adds or changes one letter of such a word, or
reads a letter as its look-alike (`i` for `l`, `1` for `l`), and one letter makes the whole
address wrong. A word that is a stock word once look-alikes are read alike, or (seven
letters or more: shorter words have real neighbours, `Karang` and `Kajang`) one letter away
from exactly one, is that word; a six-letter word only when the letter changed is one OCR
confuses with the right one (`Lunpur`). The stock is general knowledge of Malaysian
addresses, not taken from labelled receipts.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOCK = _words(
    """
    johor kedah kelantan melaka malacca negeri sembilan pahang perak perlis pulau pinang
    penang sabah sarawak selangor terengganu kuala lumpur putrajaya labuan wilayah
    persekutuan darul ehsan takzim makmur ridzuan khusus aman naim malaysia jalan lorong
    taman persiaran lebuh lebuhraya bandar seksyen kawasan perindustrian kampung bangunan
    tingkat mukim sungai bukit pusat perdana utama indah mall plaza level floor petaling
    damansara subang klang cheras puchong kajang ampang serdang kepong semenyih rawang
    seremban bahru masai skudai kembangan bangi cyberjaya butterworth kuantan kuching
    georgetown
    """
)
# The states, and the country: an address's last words (a federal territory's name is a
# town's too, and `Kuala Lumpur` is followed by `Wilayah Persekutuan`).
STATES = _words(
    """
    johor kedah kelantan melaka malacca sembilan pahang perak perlis pinang penang sabah
    sarawak selangor terengganu ehsan takzim makmur ridzuan khusus naim malaysia
    """
)
# Look-alikes OCR confuses in words: a digit for a letter, `i` for `l`.
_LOOK_ALIKE = str.maketrans("0158i", "olsbl")
_BY_LOOKS = {w.translate(_LOOK_ALIKE): w for w in STOCK if len(w) >= 4}
# Real words that read like a stock word: `e-mail` is no `e-mall`.
_REAL = frozenset({"mail"})
# A stock word of six letters or more by each of its one-letter deletions and where the
# letter was: a word one letter changed leaves the same deletion at the same place.
_LONG = [w for w in STOCK if len(w) >= 6]
_DELETIONS: dict[tuple[str, int], set[str]] = {}
for _word in _LONG:
    for _at in range(len(_word)):
        _DELETIONS.setdefault((_word[:_at] + _word[_at + 1 :], _at), set()).add(_word)
# Words as a receipt glues them (`KawasanPerindustian`): a capital starts a new word.
_WORD = re.compile(r"[A-Z]?[a-z\d]+|[A-Z\d]+(?![a-z])")


def _one_letter_off(low: str) -> set[str]:
    """The stock words `low` is one letter changed, missing or extra from."""
    found: set[str] = set()
    for at in range(len(low)):
        cut = low[:at] + low[at + 1 :]
        found |= _DELETIONS.get((cut, at), set())  # changed: `lunpur`
        if cut in STOCK and len(cut) >= 6:
            found.add(cut)  # extra
    for at in range(len(low) + 1):
        found |= _DELETIONS.get((low, at), set())  # missing: `perindustian`
    return found


# Letters OCR reads for each other; a six-letter word has real neighbours one other letter
# away (`Karang` and `Kajang`), so it is only corrected for these.
_CONFUSED = frozenset({("m", "n"), ("n", "m"), ("n", "h"), ("h", "n"), ("u", "v"), ("v", "u")})


def _confused(word: str, right: str) -> bool:
    if len(right) >= 7:
        return True
    if len(word) != len(right):
        return False
    return all(a == b or (a, b) in _CONFUSED for a, b in zip(word, right, strict=True))


def stock_word(word: str) -> str | None:
    """The stock word `word` misreads, if it misreads exactly one (lower case)."""
    low = word.lower()
    if low in STOCK or low in _REAL or low.isdigit() or len(low) < 4:
        return None
    if (looks := _BY_LOOKS.get(low.translate(_LOOK_ALIKE))) is not None:
        return looks
    if len(low) < 6 or not low.isalpha():
        return None
    found = {right for right in _one_letter_off(low) if _confused(low, right)}
    return found.pop() if len(found) == 1 else None


def _cased(word: str, like: str) -> str:
    if like.isupper() and sum(ch.isalpha() for ch in like) > 1:
        return word.upper()
    return word.capitalize() if like[:1].isupper() else word


def fix_place_words(text: str) -> str:
    """`text` with Malaysian address words misread by OCR spelled right."""

    def fix(match: re.Match[str]) -> str:
        right = stock_word(match.group(0))
        return _cased(right, match.group(0)) if right else match.group(0)

    return _WORD.sub(fix, text)
