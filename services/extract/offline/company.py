"""Who issued a document: the seller's name on a receipt or an invoice.

Receipts rarely print "Company:" before the seller's name; they put it at the top, often
with its company form (`SDN BHD`, `S/B`, `GmbH`) and registration number, followed by the
address. Invoices name their issuer in a title, a return address, a web address or a
payee's label. These rules encode that, for the offline extractor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bytereview.values.typed import JsonValue
from services.extract.offline.ocrfix import fix_words

# `SDN BHD` as OCR reads it too: `SDNBHD`, `SONBHD`, `SDN 3HD`, `SDN.BHZ.`.
SDN_BHD = re.compile(
    r"(?i)\bS[DIO0]N\b\.?\s*[B83E]H[DZ0]\b\.?|S[DO0]N[B83E]H[DZ0]\b|(?<![\d/])5/B\b"
)
# `S/B` as OCR reads it at the end of a name (`S/D`, `S/8`, `S/R`), before its registration
# number or the end of the line (`5/8` is left alone: `Jalan 5/8` is an address).
_SB_MISREAD = re.compile(r"(?i)(?<![\w/])S/[8DR](?=\s*(\(|$))")
# Company forms: Malaysia (`SDN BHD`, `S/B`), common law, continental Europe, India.
LEGAL_FORM = re.compile(
    r"(?i)("
    + SDN_BHD.pattern[4:]
    + "|"
    + _SB_MISREAD.pattern[4:]
    + r"|\bbhd\b|\bs/b\b|(?<![\d/])5/b\b|\bltd\b|limited|\binc\b|\bllc\b"
    r"|\bllp\b|gmbh|\bs\.?a\.?s?\b|\bsarl\b|\bplc\b|\bco\.|corporation|\bcorp\b|\bpvt\b"
    r"|\bsp\.\s*z\s*o\.?\s*o|\bb\.?v\.?\b|\bn\.v\.|\bag\b|\bs\.?r\.?l\b|\bs\.p\.a\b)"
)
# Words that name a business but not its legal form: weaker evidence than `SDN BHD`.
BUSINESS_WORD = re.compile(r"(?i)(enterprise|trading|restaurant)")
# Lines naming someone else than the issuer: `Owned by ...`, `Licensee of ...`, a signature.
NOT_THE_ISSUER = re.compile(
    r"(?i)^(owned|operated|managed|licensee|licenced|licensed|franchisee|a\s+member|"
    r"member|bill(ed)?\s+to|ship(ped)?\s+to|customer|client|sold\s+to|for\b)|:\s*$"
)
# Lines that end the address block under the name.
AFTER_ADDRESS = re.compile(
    r"(?i)(\btel\b|phone|fax|gst|\bvat\b|invoice|receipt|\bdate\b|cashier|e-?mail|www\.|"
    r"http|reg\.?\s*no|co\.?\s*no|document)"
)
# A registration number alone on its line, `(0005583085-K)`, `822737-X`: mostly digits, so
# that a glued address line (`LOT276JALANBANTING`) is not taken for one.
REGISTRATION = re.compile(
    r"(?i)^\(\s*[\w.-]*\d[\w.-]*\s*\)$|^\d[\d-]{4,}-?[A-Z]$|^\d{6,}$"
    r"|company\s*no|c[o0]\s*[.-]?\s*reg|\broc\b|\bbr\s*no"
)
_TRAILING_REGISTRATION = re.compile(r"\s*[(\[][^()\[\]]*\d[^()\[\]]*[)\]]?\s*$")
# `Owned by:` above a company: the owner, printed under the shop's own name.
_OWNER = re.compile(r"(?i)^((owned|operated|managed)\s*by|licensee|licenced|licensed|franchisee)\b")
_NOT_A_NAME = re.compile(r"(?i)(tax\s*in\w{0,4}ce|receipt|invoice|welcome|thank|copy|page\s*\d)")


# An item line's code or price: `1.2012-0029`, `5.80`.
_ITEM_LINE = re.compile(r"\d[.,]\d")


def _letters(line: str) -> int:
    return sum(ch.isalpha() for ch in line)


def _shouting(line: str) -> bool:
    """Printed names are in capitals; handwriting and slogans at the top mostly are not."""
    letters = [ch for ch in line if ch.isalpha()]
    return len(letters) >= 3 and sum(ch.isupper() for ch in letters) >= 0.7 * len(letters)


# An address's numbers: a postcode, a unit (`NO.12`, `LOT 3`), a street (`JALAN SS 2/7`).
_ADDRESS_NUMBER = re.compile(r"(?i)\d{5}|\b(no|lot|unit|blk|jalan|jln)\b\.?\s*:?\s*\d|\d/\d")


def _name_like(line: str, *, digits: bool = False) -> bool:
    """A line that can be a name: letters, no label, and no digits (or, with `digits`, a
    few that are not an address's: `99 SPEED MART`, `7-ELEVEN`)."""
    line = _TRAILING_REGISTRATION.sub("", line)
    count = sum(ch.isdigit() for ch in line)
    return (
        _letters(line) >= 3
        and not _NOT_A_NAME.search(line)
        and not AFTER_ADDRESS.search(line)
        and (not count or (digits and 2 * count <= _letters(line)))
        and not (digits and _ADDRESS_NUMBER.search(line))
    )


def organisation_span(lines: Sequence[str], *, fallback: bool = True) -> tuple[int, int] | None:
    """Lines [start, end) of the issuer's name: a legal form near the top (with the line above
    when the name wraps), else (with `fallback`) the first line in capitals, else the first
    name-like line."""
    top = [(i, ln) for i, ln in enumerate(lines[:12]) if ln.strip()]
    owned = False
    for form in (LEGAL_FORM, BUSINESS_WORD):
        for i, line in top:
            if not form.search(line) or _letters(line) < 4:
                continue
            if form is BUSINESS_WORD and _ITEM_LINE.search(line):
                continue  # `1.2012-0029 RESTAURANT ORDER CHIT`: an item sold, not the seller
            if _OWNER.search(line) or (i > 0 and _OWNER.search(lines[i - 1])):
                owned = True  # the owner company; the shop's name is above
                continue
            if NOT_THE_ISSUER.search(line) or REGISTRATION.search(line):
                continue  # `CO. REG. NO: 000948487-V` is no company form
            start = _name_start(lines, i, form)
            return start, _name_end(lines, i + 1)
    if not owned and (found := _registered(top)) is not None:
        return found
    if not fallback and not owned:
        return None
    # The shop's name is printed above its address: a heading in capitals under the address
    # (`PREPAY CHIT NUMBER`) is not it, the line right above the address is.
    address = next((i for i, line in top if _ADDRESS_NUMBER.search(line)), len(lines))
    for i, line in top:
        if _name_like(line) and _shouting(line) and not NOT_THE_ISSUER.search(line):
            if i > address and (found := _above(lines, address)) is not None:
                return found
            return i, i + 1
    for i, line in top:
        if _name_like(line) and not NOT_THE_ISSUER.search(line):
            return i, i + 1
    return None


def _above(lines: Sequence[str], address: int) -> tuple[int, int] | None:
    """The name on the line above the address's first line (`BHPetrol Permas Jaya 2`)."""
    above = lines[address - 1] if address > 0 else ""
    if _name_like(above, digits=True) and not NOT_THE_ISSUER.search(above):
        return address - 1, address
    return None


# A line that continues the name above it: `& TEA LEAF (M) SDN. BHD.` under `THE COFFEE BEAN`,
# `(SEMENYIH) SDN BHD` under `PASAR RAYA MEGA MAJU`, `ALAM) SDN BHD` under `ENTERPRISE (SETIA`.
_CONTINUES = re.compile(r"(?i)^(&|and\b|of\b|\(|[^()\s]*\))")


def _continues(line: str, above: str, form: re.Pattern[str] | None) -> bool:
    """Whether `line` (the name's first line so far) carries on the name printed on `above`."""
    if _CONTINUES.search(line.strip()) or above.count("(") > above.count(")"):
        return True
    if form is None:
        # A line above the company form's line: `AIK HUAT HARDWARE` / `ENTERPRISE (SETIA`.
        return bool(BUSINESS_WORD.match(line.strip()))
    # `LIAN CHI PU TIAN VEGETARIAN` / `RESTAURANT SDN BHD`: little more than the form.
    match = form.search(line)
    head = line[: match.start()].split() if match else []
    return not head or (len(head) == 1 and bool(BUSINESS_WORD.fullmatch(head[0])))


def _name_start(lines: Sequence[str], i: int, form: re.Pattern[str]) -> int:
    """The first line of a name whose company form is on line `i` (names wrap over up to
    three lines)."""
    start = i
    while start > 0 and i - start < 2:
        above = lines[start - 1]
        first = form if start == i else None
        if not (_continues(lines[start], above, first) and _name_like(above) and _shouting(above)):
            break
        start -= 1
    return start


# A branch in parentheses under the name: `CHECKERS HYPERMARKET SDN BHD` / `(JALAN KLANG LAMA)`.
_BRANCH = re.compile(r"^\([^\d()]{3,}\)$")


def _name_end(lines: Sequence[str], end: int) -> int:
    return end + 1 if end < len(lines) and _BRANCH.match(lines[end].strip()) else end


# A registration number after the name (`99 SPEED MART (519537-X)`) or alone under it:
# companies print theirs with their name.
_REGISTRATION_AFTER = re.compile(r"[(\[]\s*\d{5,}-?\s*[A-Z]\s*[)\]]?\s*$")


def _registered(top: Sequence[tuple[int, str]]) -> tuple[int, int] | None:
    """The line a company registration number follows, when no company form is printed."""
    for (i, line), (_, below) in zip(top, [*top[1:], (-1, "")], strict=True):
        if _REGISTRATION_AFTER.search(line):
            name = line[: _REGISTRATION_AFTER.search(line).start()]  # type: ignore[union-attr]
        elif REGISTRATION.match(below.strip()) and not REGISTRATION.search(line):
            name = line
        else:
            continue
        if _name_like(name, digits=True) and _shouting(name):
            return i, i + 1
    return None


def organisation(lines: Sequence[str]) -> JsonValue:
    """The issuer's name: from a title (`Amazon Web Services Invoice`), a return-address line,
    a company form near the top, the brand of the document's web address, the payee's
    label, a company form further down, or the first name-like line at the top."""
    found = (
        _titled(lines)
        or _return_address(lines)
        or _spanned(lines, organisation_span(lines, fallback=False))
        or brand(lines)
        or _labelled_issuer(lines)
        or _legal_anywhere(lines)
        or _spanned(lines, organisation_span(lines))
    )
    return _clean_name(found) if found else None


def _spanned(lines: Sequence[str], span: tuple[int, int] | None) -> str | None:
    if span is None:
        return None
    return " ".join(ln.strip() for ln in lines[span[0] : span[1]])


def _clean_name(name: str) -> str:
    name = _TRAILING_REGISTRATION.sub("", name) or name
    # OCR's spellings of SDN BHD, and look-alike digits inside words.
    name = re.sub(r"(?<![\d/])5/B\b", "S/B", name)
    name = _SB_MISREAD.sub("S/B", name)
    name = re.sub(r"(?<=\))\s*BH[O0]\b|(?<=\)\s)BH[O0]\b", " BHD", name)
    name = SDN_BHD.sub(
        lambda m: m.group(0) if re.fullmatch(r"SDN\.?\s*BHD\.?", m.group(0)) else "SDN BHD", name
    )
    return fix_words(re.sub(r"(?<=[A-Z]\.)1(?=\.)", "I", name)).strip(" :,;-")


_TITLE = re.compile(
    r"^(?:(?P<a>.+?)\s+(?:invoice|rechnung|factuur|facture|factura)|"
    r"(?:invoice|receipt|bill)\s+from\s+(?P<b>.+))$",
    re.IGNORECASE,
)
_NOT_A_TITLE = re.compile(
    r"(?i)\b(tax|sales|commercial|pro\s*-?forma|proforma|credit|debit|simplified|original|copy|"
    r"final|retail|gst|vat|your|this|the|an?|for|of|my|kopie|e|electronic|cash|official|"
    r"service|self-billed|date|number|no|total)$|\d"
)


def _titled(lines: Sequence[str]) -> str | None:
    """`Amazon Web Services Invoice`, `Invoice from Acme`: the document names its issuer."""
    for line in lines[:40]:
        match = _TITLE.match(line.strip())
        if match is None:
            continue
        name = (match["a"] or match["b"]).strip(" :-,")
        words = name.split()
        # A name in a title: a few capitalised words, none of them another label.
        capitalised = all(w[:1].isupper() for w in words) and len(words) <= 5
        if _letters(name) >= 3 and capitalised and not _NOT_A_TITLE.search(name):
            return name
    return None


# `QualityHosting AG - Uferweg 40-42 - D-63571 Gelnhausen`: the sender above a window envelope.
_RETURN_ADDRESS = re.compile(
    r"^(?P<name>[^\d,]{3,60}?)\s+[-\u2013|·•]\s+.*\d.*\s+[-\u2013|·•]\s+\S*\d{4,}"
)


def _return_address(lines: Sequence[str]) -> str | None:
    for line in lines[:40]:
        match = _RETURN_ADDRESS.match(line.strip())
        if match and LEGAL_FORM.search(match["name"]):
            return match["name"].strip()
    return None


_DOMAIN = re.compile(r"(?i)(?:https?://|www\.|@)((?:[a-z0-9-]+\.)+[a-z]{2,})")
# Addresses that name a mail provider or a tool, not the issuer.
_NOT_A_BRAND = frozenset(
    [
        "gmail",
        "yahoo",
        "hotmail",
        "outlook",
        "live",
        "icloud",
        "aol",
        "gmx",
        "example",
        "mail",
        "protonmail",
        "msn",
        "web",
    ]
)


def brand(lines: Sequence[str]) -> str | None:
    """The issuer's brand as its web or mail address spells it, printed as a word in the
    document: `www.flipkart.com` → `Flipkart`, `www.azure-interior.com` → `Azure Interior`."""
    for line in lines:
        if re.search(r"(?i)powered\s+by|generated\s+by|created\s+with", line):
            continue
        for match in _DOMAIN.finditer(line):
            labels = match.group(1).lower().split(".")
            # The registrable label: `aws.amazon.com` → amazon, `shop.co.uk` → shop.
            core = [x for x in labels[:-1] if x not in ("www", "co", "com", "net", "org", "ac")]
            if not core or core[-1] in _NOT_A_BRAND:
                continue
            name = _brand_in_text(core[-1], lines)
            if name:
                return name
    return None


def _brand_in_text(label: str, lines: Sequence[str]) -> str | None:
    words = label.split("-")
    plain = "".join(words)
    word = r"[^\W\d_][\w&'-]*"
    pattern = re.compile(word + rf"(?:\s+{word}){{0,{len(words) - 1}}}")
    for line in lines:
        text = _DOMAIN.sub(" ", re.sub(r"\S+@\S+|https?://\S+|www\.\S+", " ", line))
        text = re.sub(r"\.(com|net|org|[a-z]{2})\b", " ", text)
        for match in pattern.finditer(text):
            candidate = match.group(0)
            squeezed = re.sub(r"[\W_]", "", candidate).lower()
            # The whole label, or a brand the address extends (`OYO` of oyorooms.com).
            if squeezed == plain or (
                len(words) == 1
                and len(squeezed) >= 3
                and plain.startswith(squeezed)
                and candidate.isupper()
            ):
                return candidate
    return None


_PAYEE = re.compile(
    r"(?i)(sold\s+by|seller|supplier|vendor|service\s+provider|issued\s+by|payable\s+to|"
    r"pay(?:ment)?s?\s+to|in\s+fav(?:ou|o)r\s+of|beneficiary|account\s+(?:holder|name)|"
    r"titulaire\s+du\s+compte|kontoinhaber|ten\s+name\s+van|t\.n\.v\.)\s*[:\-]?\s*(?P<rest>.*)$"
)


def _labelled_issuer(lines: Sequence[str]) -> str | None:
    """`Titulaire du compte : NETPRESSE`, `Sold By : WS Retail`: whoever is paid issued it."""
    for i, line in enumerate(lines):
        match = _PAYEE.search(line)
        if match is None:
            continue
        rest = re.split(r"\s[-\u2013|]\s|\s{2,}", match["rest"])[0].strip(" :,.")
        if not rest and i + 1 < len(lines):
            rest = lines[i + 1].strip(" :,.")
        if _letters(rest) >= 3 and not re.search(r"\d{3}", rest) and len(rest.split()) <= 6:
            return rest
    return None


def _legal_anywhere(lines: Sequence[str]) -> str | None:
    for line in lines[12:]:
        match = LEGAL_FORM.search(line)
        if match is None or NOT_THE_ISSUER.search(line) or _letters(line) < 4:
            continue
        if re.search(r"(?i)total|\d[.,]\d{2}\b|gst|\bvat\b|\btax\b", line):
            continue
            name = line[: match.end()].strip()
            if (len(name) <= 60 and _shouting(name)) or name[:1].isupper():
                return name
    return None
