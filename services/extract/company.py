"""Who issued a document: the seller's name on a receipt or an invoice.

Receipts rarely print "Company:" before the seller's name; they put it at the top, often
with its company form (`SDN BHD`, `S/B`, `GmbH`) and registration number, followed by the
address. Invoices name their issuer in a title, a return address, a web address or a
payee's label. These rules encode that, for the offline extractor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from services.extract.ocrfix import fix_words
from services.extract.schema import JsonValue

# `SDN BHD` as OCR reads it too: `SDNBHD`, `SONBHD`, `SDN 3HD`, `SDN.BHZ.`.
SDN_BHD = re.compile(r"(?i)\bS[DIO0]N\b\.?\s*[B83]H[DZ0]\b\.?|S[DO0]N[B83]H[DZ0]\b|(?<![\d/])5/B\b")
# Company forms: Malaysia (`SDN BHD`, `S/B`), common law, continental Europe, India.
LEGAL_FORM = re.compile(
    r"(?i)("
    + SDN_BHD.pattern[4:]
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
# `Licensee of McDonald's`, `formerly known as ...`: about the company, not its address.
_TRAILING_REGISTRATION = re.compile(r"\s*[(\[][^()\[\]]*\d[^()\[\]]*[)\]]?\s*$")
# `Owned by:` above a company: the owner, printed under the shop's own name.
_OWNER = re.compile(r"(?i)^(owned|operated|managed|licensee|licenced|licensed|franchisee)\b")
_NOT_A_NAME = re.compile(r"(?i)(tax\s*invoice|receipt|invoice|welcome|thank|copy|page\s*\d)")


def _letters(line: str) -> int:
    return sum(ch.isalpha() for ch in line)


def _shouting(line: str) -> bool:
    """Printed names are in capitals; handwriting and slogans at the top mostly are not."""
    letters = [ch for ch in line if ch.isalpha()]
    return len(letters) >= 3 and sum(ch.isupper() for ch in letters) >= 0.7 * len(letters)


def _name_like(line: str) -> bool:
    line = _TRAILING_REGISTRATION.sub("", line)
    return (
        _letters(line) >= 3
        and not _NOT_A_NAME.search(line)
        and not AFTER_ADDRESS.search(line)
        and not any(ch.isdigit() for ch in line)
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
            if _OWNER.search(line) or (i > 0 and _OWNER.search(lines[i - 1])):
                owned = True  # the owner company; the shop's name is above
                continue
            if NOT_THE_ISSUER.search(line) or REGISTRATION.search(line):
                continue  # `CO. REG. NO: 000948487-V` is no company form
            # `LIAN CHI PU TIAN VEGETARIAN` / `RESTAURANT SDN BHD`, `AIK HUAT ENTERPRISE (SETIA`
            # / `ALAM) SDN BHD`: a line that is little more than the legal form continues
            # the name above it.
            match = form.search(line)
            head = line[: match.start()].split() if match else []
            unclosed = lines[i - 1].count("(") > lines[i - 1].count(")") if i else False
            only_form = not head or (len(head) == 1 and BUSINESS_WORD.fullmatch(head[0]))
            wraps = i > 0 and (only_form or unclosed)
            if wraps and _name_like(lines[i - 1]) and _shouting(lines[i - 1]):
                return i - 1, i + 1
            return i, i + 1
    if not fallback and not owned:
        return None
    for i, line in top:
        if _name_like(line) and _shouting(line) and not NOT_THE_ISSUER.search(line):
            return i, i + 1
    for i, line in top:
        if _name_like(line) and not NOT_THE_ISSUER.search(line):
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
