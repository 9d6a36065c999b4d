"""Layout rules for fields that no label announces: who issued a document, their address,
the amount finally due, the currency.

Receipts and invoices rarely print "Company:" before the seller's name; they put it at
the top, followed by the address, and end with several totals of which the last one
paid counts. These rules encode that, for the offline extractor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

from services.extract.amounts import Amount, numbers
from services.extract.labels import stacked
from services.extract.ocrfix import fix_label, fix_words
from services.extract.schema import Field, InvalidValue, JsonValue, normalise

ORGANISATION_WORDS = frozenset(
    {"company", "vendor", "issuer", "merchant", "seller", "supplier", "store", "shop", "business"}
)
# `SDN BHD` as OCR reads it too: `SDNBHD`, `SONBHD`, `SDN 3HD`, `SDN.BHZ.`.
_SDN_BHD = re.compile(
    r"(?i)\bS[DIO0]N\b\.?\s*[B83]H[DZ0]\b\.?|S[DO0]N[B83]H[DZ0]\b|(?<![\d/])5/B\b"
)
# Company forms: Malaysia (`SDN BHD`, `S/B`), common law, continental Europe, India.
_LEGAL_FORM = re.compile(
    r"(?i)("
    + _SDN_BHD.pattern[4:]
    + r"|\bbhd\b|\bs/b\b|(?<![\d/])5/b\b|\bltd\b|limited|\binc\b|\bllc\b"
    r"|\bllp\b|gmbh|\bs\.?a\.?s?\b|\bsarl\b|\bplc\b|\bco\.|corporation|\bcorp\b|\bpvt\b"
    r"|\bsp\.\s*z\s*o\.?\s*o|\bb\.?v\.?\b|\bn\.v\.|\bag\b|\bs\.?r\.?l\b|\bs\.p\.a\b)"
)
# Words that name a business but not its legal form: weaker evidence than `SDN BHD`.
_BUSINESS_WORD = re.compile(r"(?i)(enterprise|trading|restaurant)")
# Lines naming someone else than the issuer: `Owned by ...`, `Licensee of ...`, a signature.
_NOT_THE_ISSUER = re.compile(
    r"(?i)^(owned|operated|managed|licensee|licenced|licensed|franchisee|a\s+member|"
    r"member|bill(ed)?\s+to|ship(ped)?\s+to|customer|client|sold\s+to|for\b)|:\s*$"
)
# Lines that end the address block under the name.
_AFTER_ADDRESS = re.compile(
    r"(?i)(\btel\b|phone|fax|gst|\bvat\b|invoice|receipt|\bdate\b|cashier|e-?mail|www\.|"
    r"http|reg\.?\s*no|co\.?\s*no|document)"
)
# A registration number alone on its line, `(0005583085-K)`, `822737-X`: mostly digits, so
# that a glued address line (`LOT276JALANBANTING`) is not taken for one.
_REGISTRATION = re.compile(
    r"(?i)^\(\s*[\w.-]*\d[\w.-]*\s*\)$|^\d[\d-]{4,}-?[A-Z]$|^\d{6,}$"
    r"|company\s*no|c[o0]\s*[.-]?\s*reg|\broc\b|\bbr\s*no"
)
# `Licensee of McDonald's`, `formerly known as ...`: about the company, not its address.
_ABOUT_THE_COMPANY = re.compile(r"(?i)\b(formerly|licensee\s+of|owned\s+by|operated\s+by)\b")
_TRAILING_REGISTRATION = re.compile(r"\s*[(\[][^()\[\]]*\d[^()\[\]]*[)\]]?\s*$")
# `Owned by:` above a company: the owner, printed under the shop's own name.
_OWNER = re.compile(r"(?i)^(owned|operated|managed|licensee|licenced|licensed|franchisee)\b")
_PHONE_OR_EMAIL = re.compile(r"\b0\d{1,2}\s?-\s?\d{6,8}\b|@")
_DATE_OR_TIME = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{1,2}:\d{2}")
_NOT_A_NAME = re.compile(r"(?i)(tax\s*invoice|receipt|invoice|welcome|thank|copy|page\s*\d)")
_TOTAL_LABELS = (
    ("grand total", 6),
    ("inclusive of", 6),
    ("incl gst", 6),
    ("incl. gst", 6),
    ("after adj", 6),
    ("total ttc", 6),
    ("total rounded", 5),
    ("rounded total", 5),
    ("nett total", 5),
    ("net total", 5),
    ("total due", 5),
    ("amount due", 5),
    ("balance due", 5),
    ("somme à payer", 5),
    ("net à payer", 5),
    ("te betalen", 5),
    ("zu zahlen", 5),
    ("gesamtbetrag", 5),
    ("rechnungsbetrag", 5),
    ("total amount", 4),
    ("total (incl", 4),
    ("total incl", 4),
    ("total payable", 4),
    ("montant total", 4),
    ("importe total", 4),
    ("totaal", 3),
    ("gesamt", 3),
    ("totale", 3),
    ("total", 2),
)
_NOT_A_TOTAL = re.compile(
    r"(?i)(sub\s*-?\s*tota|total\s*(qty|quantity|items?|excl|tax|gst|vat|stamp|discount|saving|ht\b)"
    r"|(tax|gst|vat)\s*total|excluding|exclusief|hors\s*taxe|\bnetto\b|included\s*in\s*total"
    # `Inclusive of 6% GST: 1.66` states the tax in the total, not the total.
    r"|incl\w*\.?\s+(of\s+)?\d+(\.\d+)?\s*%\s*(gst|vat|tax))"
)
# Words that head the columns of a totals line: `TOTAL CASH CHANGE 55.10 55.10 0.00`.
_MONEY_WORDS = frozenset(
    [
        "total",
        "cash",
        "change",
        "tendered",
        "paid",
        "payment",
        "rounding",
        "balance",
        "tax",
        "gst",
        "vat",
        "discount",
        "subtotal",
        "amount",
        "card",
        "credit",
        "visa",
        "due",
        "net",
    ]
)
_CURRENCIES = (
    ("USD", r"\bUSD\b|US\$|\$"),
    ("EUR", r"\bEUR\b|€"),
    ("GBP", r"\bGBP\b|£"),
    ("INR", r"\bINR\b|₹|\bRs\.?"),
    ("PLN", r"\bPLN\b|\bzł"),
    ("MYR", r"\bMYR\b|\bRM\s?\d"),
    ("CHF", r"\bCHF\b"),
    ("JPY", r"\bJPY\b|¥"),
)


def field_words(field: Field) -> set[str]:
    return set(re.findall(r"[a-z]+", f"{field.name} {field.instruction}".lower()))


def is_organisation(field: Field) -> bool:
    return bool(field_words(field) & ORGANISATION_WORDS) and field.data_type in ("text", "name")


def is_address(field: Field) -> bool:
    return field.data_type == "address" or "address" in field_words(field)


def is_currency_code(field: Field) -> bool:
    return field.data_type == "text" and "currency" in field_words(field)


_TOTAL_WORDS = frozenset({"total", "amount", "due", "sum", "payable", "paid", "grand", "balance"})
# Words that name the document, not a different amount: `invoice_total` is the total.
_DOCUMENT_WORDS = frozenset({"invoice", "receipt", "bill", "document", "order", "final", "gross"})


def is_total(field: Field) -> bool:
    """The amount finally due: named so, with no word naming another amount (`discount`)."""
    if field.data_type not in ("currency", "number"):
        return False
    name = set(re.findall(r"[a-z]+", field.name.lower()))
    if name - _TOTAL_WORDS - _DOCUMENT_WORDS:
        return False
    return bool(field_words(field) & _TOTAL_WORDS)


def is_layout_field(field: Field) -> bool:
    """Fields the layout rules answer (or know to be absent)."""
    return is_organisation(field) or is_address(field) or is_currency_code(field) or is_total(field)


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
        and not _AFTER_ADDRESS.search(line)
        and not any(ch.isdigit() for ch in line)
    )


def organisation_span(lines: Sequence[str], *, fallback: bool = True) -> tuple[int, int] | None:
    """Lines [start, end) of the issuer's name: a legal form near the top (with the line above
    when the name wraps), else (with `fallback`) the first line in capitals, else the first
    name-like line."""
    top = [(i, ln) for i, ln in enumerate(lines[:12]) if ln.strip()]
    owned = False
    for form in (_LEGAL_FORM, _BUSINESS_WORD):
        for i, line in top:
            if not form.search(line) or _letters(line) < 4:
                continue
            if _OWNER.search(line) or (i > 0 and _OWNER.search(lines[i - 1])):
                owned = True  # the owner company; the shop's name is above
                continue
            if _NOT_THE_ISSUER.search(line) or _REGISTRATION.search(line):
                continue  # `CO. REG. NO: 000948487-V` is no company form
            # `LIAN CHI PU TIAN VEGETARIAN` / `RESTAURANT SDN BHD`, `AIK HUAT ENTERPRISE (SETIA`
            # / `ALAM) SDN BHD`: a line that is little more than the legal form continues
            # the name above it.
            match = form.search(line)
            head = line[: match.start()].split() if match else []
            unclosed = lines[i - 1].count("(") > lines[i - 1].count(")") if i else False
            only_form = not head or (len(head) == 1 and _BUSINESS_WORD.fullmatch(head[0]))
            wraps = i > 0 and (only_form or unclosed)
            if wraps and _name_like(lines[i - 1]) and _shouting(lines[i - 1]):
                return i - 1, i + 1
            return i, i + 1
    if not fallback and not owned:
        return None
    for i, line in top:
        if _name_like(line) and _shouting(line) and not _NOT_THE_ISSUER.search(line):
            return i, i + 1
    for i, line in top:
        if _name_like(line) and not _NOT_THE_ISSUER.search(line):
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
    name = _SDN_BHD.sub(
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
        if match and _LEGAL_FORM.search(match["name"]):
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
        match = _LEGAL_FORM.search(line)
        if match is None or _NOT_THE_ISSUER.search(line) or _letters(line) < 4:
            continue
        if re.search(r"(?i)total|\d[.,]\d{2}\b|gst|\bvat\b|\btax\b", line):
            continue
            name = line[: match.end()].strip()
            if (len(name) <= 60 and _shouting(name)) or name[:1].isupper():
                return name
    return None


_REGISTRATION_LABEL = re.compile(
    r"(?i)company\s*no|c[o0]\s*[.-]?\s*reg|\broc\b|\bbr\s*no|reg\.?\s*no"
)
# `Pay By: CASH`, `Cashier: 3`: a label with a value is no part of an address, but `NO: 28`
# and `LOT: 5` start one.
_LABELLED = re.compile(r"([^\W\d_]{2,})\.?\s*:")
_ADDRESS_START_WORDS = frozenset({"no", "lot", "unit", "level", "blk", "block", "lorong", "jalan"})


def _is_labelled(text: str) -> bool:
    return any(m.group(1).lower() not in _ADDRESS_START_WORDS for m in _LABELLED.finditer(text))


def address(lines: Sequence[str]) -> JsonValue:
    """The lines under the issuer's name up to the first contact or tax line. A name line
    before the first line with a number (a branch or brand under the company) is skipped."""
    span = organisation_span(lines)
    if span is None:
        return None
    block: list[str] = []
    for line in lines[span[1] : span[1] + 8]:
        text = line.strip()
        label_view = fix_label(text)
        if not text:
            continue
        ends = (
            _AFTER_ADDRESS.search(label_view)
            or _DATE_OR_TIME.search(text)
            or _PHONE_OR_EMAIL.search(text)
            or _REGISTRATION_LABEL.search(label_view)
            or _is_labelled(text)
        )
        if ends:
            if block:
                break
            continue  # a date or a tax number printed between the name and the address
        if not block and (
            _REGISTRATION.search(text)
            or _LEGAL_FORM.search(text)
            or _BUSINESS_WORD.search(text)
            or _NOT_THE_ISSUER.search(text)
        ):
            continue  # registration number or the rest of the name, before the address
        block.append(text)
    # `DOMINO'S PIZZA PERMAS JAYA` / `No.12, Jalan Permas Jaya 10`: the address starts at
    # its first number.
    while len(block) > 1 and (
        not any(ch.isdigit() for ch in block[0])
        or _REGISTRATION.search(block[0])
        or _ABOUT_THE_COMPANY.search(block[0])
    ):
        block.pop(0)
    return fix_words(" ".join(block)) or None


def total(lines: Sequence[str], data_type: str) -> JsonValue:
    """The amount on the strongest total label; among equals the last one printed."""
    best: tuple[int, int, Amount] | None = None
    for i, line in enumerate(lines):
        low = fix_label(line).lower()
        if best is not None and "summary" in low:
            break  # a tax summary table: its "Total" row splits the amount by tax code
        if _NOT_A_TOTAL.search(low):
            continue
        rank = next((r for label, r in _TOTAL_LABELS if label in low), 0)
        if not rank:
            continue
        found = _amount_near(lines, i)
        if found is None and (value := stacked(lines, i)) is not None:
            found = next((a for a in reversed(numbers(value)) if not a.percent), None)
        if found is not None and (best is None or (rank, i) >= best[:2]):
            best = (rank, i, found)
    if best is None:
        return None
    try:
        return normalise(_rounded(lines, best[1], best[2]), data_type)
    except InvalidValue:
        return None


def _rounded(lines: Sequence[str], at: int, value: Amount) -> str:
    """The total after a `ROUNDING ADJ -0.01` line that follows it, as cash receipts print."""
    for i in range(at + 1, min(at + 4, len(lines))):
        if "round" in lines[i].lower():
            adjustment = _amount_near(lines, i, next_line=False)
            if adjustment is not None and abs(adjustment.value) < Decimal("0.1"):
                places = max(value.decimals, adjustment.decimals)
                return f"{value.value + adjustment.value:.{places}f}"
    return value.text


# OCR reads a zero as the letter O inside amounts: `-O.01`, `7O.00`.
_OCR_ZERO = re.compile(r"(?<=\d)[Oo]|(?<=[.,-])[Oo](?=[\d.,Oo])|[Oo](?=[.,]\d)")


def _amount_near(lines: Sequence[str], i: int, *, next_line: bool = True) -> Amount | None:
    """The amount on the label's line, else on the next line. A percentage is a rate, not
    an amount; where the line prints decimals, a bare integer is a count or a code."""
    # A label in a sentence is not a label over the next line's amount.
    # Nor is one followed by its own (unreadable) value: `Total Payable: OPL`.
    next_line = next_line and len(lines[i]) < 40 and not re.search(r":\s*\S", lines[i])
    for raw_line in (lines[i], *lines[i + 1 : i + 1 + next_line]):
        line = _OCR_ZERO.sub("0", raw_line)
        amounts = [a for a in numbers(line) if not a.percent]
        if any(a.decimals for a in amounts):
            amounts = [a for a in amounts if a.decimals]
        if not amounts:
            continue
        # Labels heading as many amounts as they name: take the total's own column.
        head = re.findall(r"[a-z]+", fix_label(line[: amounts[0].start]).lower())
        labels = [w for w in head if w in _MONEY_WORDS]
        if len(amounts) > 1 and len(labels) == len(amounts) and "total" in labels:
            return amounts[labels.index("total")]
        return amounts[-1]
    return None


def currency_code(text: str) -> JsonValue:
    """The ISO 4217 code of the currency the document names most often."""
    counts = {code: len(re.findall(pattern, text)) for code, pattern in _CURRENCIES}
    code, count = max(counts.items(), key=lambda item: item[1])
    return code if count else None


def by_layout(text: str, field: Field) -> JsonValue:
    """A value found by position rather than by label, or None if no rule applies."""
    lines = [ln for ln in (raw.strip() for raw in text.splitlines()) if ln]
    if is_organisation(field):
        return organisation(lines)
    if is_address(field):
        return address(lines)
    if is_currency_code(field):
        return currency_code(text)
    if is_total(field):
        return total(lines, field.data_type)
    return None
