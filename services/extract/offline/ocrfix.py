"""Undoing OCR's look-alike confusions by context.

OCR reads `O` for `0` and `1` for `l` where the glyphs look alike. Inside a word the
neighbours decide: a digit between two letters is a letter (`L0T` → `LOT`,
`Peta1ing` → `Petaling`), a letter O inside or at the edge of a run of digits is a zero
(`433O0` → `43300`). Identifiers mix letters and digits on purpose, so this is for
words (names, addresses, labels), never for codes and amounts.
"""

from __future__ import annotations

import re

_DIGIT_AS_LETTER = {"0": "O", "1": "l", "5": "S", "8": "B"}
# A look-alike digit with letters on both sides; for 1, 5 and 8 two letters on one side,
# so that postcodes such as `W1A` stay as printed.
_L = r"[^\W\d_]"
_SANDWICHED_DIGIT = re.compile(
    rf"(?<={_L})0(?={_L})|(?<={_L}{{2}})[158](?={_L})|(?<={_L})[158](?={_L}{{2}})"
)
# A letter O between digits, or closing a run of three or more digits.
_LETTER_O = re.compile(r"(?<=\d)[Oo]+(?=\d)|(?<=\d{3})[Oo](?![^\W\d_])|(?<![^\W\d_])[Oo](?=\d{3})")
# A label's last letter read as a digit: `Tota1`, `TOTA1`.
_TRAILING_DIGIT = re.compile(r"(?<=[^\W\d_]{3})[10](?![\w])")


def _letter_for(match: re.Match[str]) -> str:
    digit = match.group(0)
    letter = _DIGIT_AS_LETTER[digit]
    before = match.string[match.start() - 1]
    if digit == "1":
        return "L" if before.isupper() else "l"
    return letter if before.isupper() else letter.lower()


# A zero opening a word of letters (`0ld`), or closing a word that has no other digit
# (`C0.`, `N0:`).
_ZERO_AFTER_LETTERS = re.compile(r"\b([^\W\d_]+)0(?![\w])")


# A one closing a word of small letters that labels the number after it is the letter l:
# `Leve1 6`. Not after capitals (`SS1`, `PJU1` are street codes), a short word (`No1` is a
# house number) or before anything but a number (`Jalan Raya1` is the street's number, glued).
_TRAILING_ONES = re.compile(r"(?<=[^\W\d_]{2}[a-z])1(?=\s\d)")


def fix_words(text: str) -> str:
    """`text` with look-alike digits inside words and letters inside numbers corrected."""
    text = _SANDWICHED_DIGIT.sub(_letter_for, text)
    text = _TRAILING_ONES.sub("l", text)
    text = re.sub(r"(?<![\w])0(?=[^\W\d_]{2,}\b)", "O", text)
    # `7/1l8B`: an l or I between digits is a one.
    text = re.sub(r"(?<=\d)[lI](?=\d)", "1", text)
    text = _ZERO_AFTER_LETTERS.sub(
        lambda m: m.group(1) + ("O" if m.group(1)[-1].isupper() else "o"), text
    )
    return _LETTER_O.sub(lambda m: "0" * len(m.group(0)), text)


def fix_label(text: str) -> str:
    """For finding labels only: also a word's last letter read as a digit (`Tota1`)."""
    return _TRAILING_DIGIT.sub(_letter_for, fix_words(text))
