"""Reading dates as documents print them and as OCR reads them.

Numeric dates (`18/03/2018`, `2018-03-18`, `8-9-2022`), dates with month names in
English, German, French, Dutch, Spanish and Italian (`25 Mar 2018`, `7. Mai 2014`,
`19 april 2014`, `August 3 , 2014`), and OCR's glued forms (`25Mar 2018`,
`16 May2018`, `09/02/201811:40`).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

_MONTH_NAMES = (
    "jan january januar janvier januari enero gennaio",
    "feb february februar fevrier februari febrero febbraio",
    "mar march marz maerz mars maart marzo",
    "apr april avril abril aprile",
    "may mai mei mayo maggio",
    "jun june juni juin junio giugno",
    "jul july juli juillet julio luglio",
    "aug august aout augustus agosto",
    "sep sept september septembre septiembre settembre",
    "oct october oktober octobre okt octubre ottobre",
    "nov november novembre noviembre",
    "dec december dezember decembre dez diciembre dicembre",
)
MONTHS = {name: i for i, names in enumerate(_MONTH_NAMES, start=1) for name in names.split()}

_MON = r"(?P<mon>[^\W\d_]{3,10})"
# OCR glues a date to the time after it (`09/02/201811:40`), so a four-digit year needs no
# boundary after it; plausible years (19xx, 20xx) are tried before two-digit ones.
_YEAR = r"(?P<y>(?:19|20)\d{2}|\d{2})"
DATE_PATTERNS = (
    re.compile(r"\b(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?:\b|(?=\d{1,2}:\d{2}))"),
    # Same separator twice: `REG#19-18/03/2018` holds 18/03/2018, not 19-18/03.
    re.compile(r"(?<!\d)(?P<a>\d{1,2})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<y>(?:19|20)\d{2})"),
    # A two-digit year is trusted only where no code runs into the date: in
    # `HA06HD01-3-70` the digits belong to an item code, not to 1970.
    re.compile(r"(?<![\w-])(?P<a>\d{1,2})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{2})"),
    # Day, month name, year, with or without the spaces OCR drops: `25Mar 2018`, `7. Mai 2014`.
    # Spanish and Portuguese put `de` between the parts: `3 de febrero de 2026`.
    re.compile(
        r"(?<!\d)(?P<d>\d{1,2})(?:st|nd|rd|th|\.)?[\s/-]*(?:de\s+)?"
        + _MON
        + r"\.?,?[\s/-]*(?:de\s+)?"
        + _YEAR
    ),
    # Month name, day, year: `March 5, 2021`, `August 3 , 2014`.
    re.compile(r"\b" + _MON + r"\.?[\s-]+(?P<d>\d{1,2})(?:st|nd|rd|th)?\s*,?[\s-]+(?P<y>\d{4})\b"),
    # Last resort, a date glued to the number before it (`C021027729/2/2017`): every
    # starting point is tried (a lookahead), so 29/2/2017 failing leaves 9/2/2017.
    re.compile(r"(?=(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>(?:19|20)\d{2}))"),
)


def _month(name: str) -> int | None:
    plain = unicodedata.normalize("NFKD", name.lower().rstrip("."))
    return MONTHS.get("".join(ch for ch in plain if not unicodedata.combining(ch)))


_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{1,2})([-/.])(\d{1,2})\2(?:19|20)?\d{2}(?!\d)")


def _spans(match: re.Match[str], text: str) -> bool:
    """Whether the date `match` found is all of `text` but spaces around it. The last
    pattern matches nothing itself (a lookahead): its groups say where the date is."""
    start, end = match.span()
    if start == end:
        found = [name for name, part in match.groupdict().items() if part is not None]
        start = min(match.start(name) for name in found)
        end = max(match.end(name) for name in found)
    return not text[:start].strip() and not text[end:].strip()


def day_first_in(text: str) -> bool:
    """Whether `text` writes its numeric dates day first, judged by the dates only one order
    can read (`25/03/2018` day first, `03/25/2018` month first); day first when none says,
    as most of the world writes dates."""
    day_first = month_first = 0
    for match in _NUMERIC_DATE.finditer(text.replace("~", "-")):
        a, b = int(match[1]), int(match[3])
        if a > 12 and 1 <= b <= 12:
            day_first += 1
        elif b > 12 and 1 <= a <= 12:
            month_first += 1
    return month_first <= day_first


def find_date(text: str, *, day_first: bool = True, whole: bool = False) -> dt.date | None:
    """The first date in `text`, or None. Ambiguous a/b/y dates follow `day_first`. With
    `whole`, only a date that is all of `text` (around it, spaces alone) counts: a person's
    `13/13/2018` is no date, where reading a document finds 3/13/2018 glued to a digit."""
    # OCR reads a hyphen as a tilde: `10~04-2018`.
    text = text.replace("~", "-")
    for pattern in DATE_PATTERNS:
        for match in pattern.finditer(text):
            if whole and not _spans(match, text):
                continue
            parts = match.groupdict()
            try:
                year = int(parts["y"])
                if year < 100:
                    year += 2000 if year < 70 else 1900
                if parts.get("mon"):
                    month = _month(parts["mon"])
                    if month is None:
                        continue
                    day = int(parts["d"])
                elif parts.get("a"):
                    a, b = int(parts["a"]), int(parts["b"])
                    if a > 12:
                        day, month = a, b
                    elif b > 12:
                        month, day = a, b
                    else:
                        day, month = (a, b) if day_first else (b, a)
                else:
                    month, day = int(parts["m"]), int(parts["d"])
                return dt.date(year, month, day)
            except ValueError:
                continue
    return None
