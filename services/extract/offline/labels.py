"""Values a document announces with a label: `Invoice No: 42`, `TVA 20% : 9,34 €`,
`Due Date:` with the date on the next line, a table header over its row of values.

A field is matched to a *concept* (invoice number, VAT amount, due date, IBAN, ...) by
the words of its name and instruction; each concept knows its labels in several
languages and what its value looks like. The value is what follows the label, without
the label, on the same line, else on the next line, else in the column under it; it must
have the concept's shape (an identifier has a digit, an IBAN passes its checksum, an
amount is not a percentage). A field whose label is nowhere is None: the value next to
another label is never taken instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from bytereview.values.amounts import numbers
from bytereview.values.dates import find_date
from bytereview.values.typed import InvalidValue, JsonValue, normalise
from services.extract.schema import Field

# How a value looks: decides how it is cut out of the text after its label.
ID, AMOUNT, DATE, IBAN, BIC, TEXT = "id", "amount", "date", "iban", "bic", "text"


@dataclass(frozen=True, slots=True)
class Concept:
    name: str
    # The field is this concept when its words include every word of one of these sets.
    triggers: tuple[frozenset[str], ...]
    # Label phrases, most specific first; words are matched with flexible spacing/dots.
    labels: tuple[str, ...]
    kind: str
    # Lines holding one of these words label something else (a total, a rate, a number).
    exclude: tuple[str, ...] = ()


def _words(phrases: str) -> tuple[str, ...]:
    """`a b|c` -> ("a b", "c"): phrases separated by bars, most specific first."""
    return tuple(phrases.split("|"))


def _t(phrases: str) -> tuple[frozenset[str], ...]:
    return tuple(frozenset(p.split()) for p in phrases.split("|"))


# On a line with these words, a tax word labels a total or a rate, not the tax amount.
_NOT_A_TAX_AMOUNT = _words("incl|included|inclusive|including|excl|exclusive|excluding|ttc|ht")
_NOT_A_TAX_AMOUNT += _words("before|after|summary|rate")
_TAX_ID_WORDS = ("no", "nr", "number", "reg", "id", "nummer", "intracommunautaire", "tin")
CONCEPTS = (
    Concept(
        "iban",
        _t("iban"),
        _words("iban"),
        IBAN,
    ),
    Concept(
        "bic",
        _t("bic|swift"),
        _words("bic|swift code|swift"),
        BIC,
    ),
    Concept(
        "vat_number",
        _t(
            "number vat|id vat|no vat|reg vat|id tax|number tax|gst id|gst number|gst reg|"
            "btw nummer|id ust|tin|gstin"
        ),
        _words(
            "vat reg no|vat registration number|vat number|vat no|vat id|btw nummer|"
            "btw nr|ust idnr|ustid|ust id|uid|n de tva|tva intracommunautaire|gst reg no|"
            "gst id no|gst id|gst no|gstin|tax id|tin|vat|btw"
        ),
        ID,
    ),
    Concept(
        "po_number",
        _t("po|order purchase"),
        _words(
            "purchase order number|purchase order no|purchase order|po number|p o number|"
            "po no|p o no|po nr|po|p o|bon de commande"
        ),
        ID,
    ),
    Concept(
        "order_number",
        _t("number order|no order|id order|nr order"),
        _words(
            "order number|order no|order id|order nr|ordernummer|bestellnummer|"
            "auftragsnummer|n de commande|numero de commande"
        ),
        ID,
    ),
    Concept(
        "customer_number",
        _t(
            "customer number|customer no|customer id|customer nr|client number|client no|"
            "client id|klantnummer|kundennummer|account id"
        ),
        _words(
            "customer number|customer no|customer id|customer|client number|client no|"
            "client id|id client|n client|numero client|klantnummer|klant nr|kundennummer|"
            "kundennr|kunden nr|numero de cliente|customer reference|customer ref|"
            "customer code|client code|kunden nr|codice cliente"
        ),
        ID,
    ),
    Concept(
        "invoice_number",
        _t(
            "invoice number|invoice no|id invoice|invoice nr|invoice num|bill number|"
            "bill no|number receipt|no receipt|factuurnummer|rechnungsnummer|invoice"
        ),
        _words(
            "invoice number|invoice no|invoice nr|invoice id|invoice num|inv no|invoice|"
            "bill number|bill no|receipt number|receipt no|factuurnummer|factuur nr|"
            "factuur|rechnungsnummer|rechnungsnr|rechnung nr|numero de facture|facture n|"
            "n facture|facture|numero de factura|factura n|factura|fattura n|fattura|"
            "faktura nr|faktura|"
            # A payment receipt for a booking is numbered by the booking: last resort.
            "document number|document no|booking id|booking number|booking reference|"
            "reservation number"
        ),
        ID,
    ),
    Concept(
        "due_date",
        _t("date due|due|date payment|payable|vervaldatum|deadline"),
        _words(
            "due date|date due|payment due|due by|due|pay by|payable by|vervaldatum|"
            "vervaldag|falligkeitsdatum|fallig am|zahlungsziel|zahlbar bis|"
            "date d echeance|echeance|date limite de paiement|fecha de vencimiento|"
            "vencimiento|scadenza"
        ),
        DATE,
    ),
    Concept(
        "tax_amount",
        _t("vat|tax|gst|btw|mwst|tva|iva|ust|sst"),
        _words(
            "vat amount|tax amount|total vat|total tax|total gst|btw bedrag|montant tva|"
            "vat|tax|gst|sst|btw|mwst|ust|tva|iva"
        ),
        AMOUNT,
        exclude=(*_NOT_A_TAX_AMOUNT, *_TAX_ID_WORDS),
    ),
    Concept(
        "subtotal",
        _t("subtotal|sub total|amount net|untaxed|net total|before tax|excluding tax|excl"),
        _words(
            "subtotal|sub total|net amount|net total|total excl|total ht|montant ht|"
            "exclusief btw|zwischensumme|nettobetrag|netto|subtotaal"
        ),
        AMOUNT,
    ),
    Concept(
        "invoice_date",
        _t("date invoice|date issue of|date issue|date receipt|date document|date"),
        _words(
            "invoice date|date of issue|issue date|issued|receipt date|document date|"
            "rechnungsdatum|factuurdatum|date de facture|fecha de factura|data fattura|"
            "datum|date|fecha|data|dated"
        ),
        DATE,
    ),
)
_OTHER_LABEL_WORDS = frozenset(
    [
        "date",
        "datum",
        "dated",
        "due",
        "total",
        "amount",
        "name",
        "address",
        "tel",
        "phone",
        "fax",
        "email",
        "page",
        "order",
        "customer",
        "client",
        "reference",
        "ref",
        "type",
        "period",
        "terms",
        "vat",
        "tax",
    ]
)
_ID_CONNECTORS = re.compile(
    r"(?i)^(?:(?:no|nr|n[°º]|n|number|num|nummer|id)(?![^\W\d_])[.:]?\s*|[#°º:.]\s*)+"
)
_SEPARATORS = " \t:#.-\u2013—=|°º"
_LABEL_LINE = re.compile(r"^[^\d]{2,40}:\s*$")
_IBAN = re.compile(r"\b([A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?)\b")
_BIC = re.compile(r"\b([A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?)\b")
_ID_TOKEN = re.compile(r"[A-Za-z0-9][\w\-/.]*[A-Za-z0-9]|[A-Za-z0-9]")


def _fold(text: str) -> str:
    """Lower case without accents, `_` as a space: labels compare on letters only."""
    plain = unicodedata.normalize("NFKD", text.replace("_", " ").lower())
    return "".join(ch for ch in plain if not unicodedata.combining(ch))


def concept_for(field: Field, *, by_instruction: bool = True) -> Concept | None:
    """The concept a field asks for, from its name first, else its instruction."""
    name_words = set(re.findall(r"[a-z]+", _fold(field.name)))
    texts = [field.name] + ([f"{field.name} {field.instruction}"] if by_instruction else [])
    for text in texts:
        words = set(re.findall(r"[a-z]+", _fold(text)))
        for concept in CONCEPTS:
            if not _fits(concept, field) or not any(t <= words for t in concept.triggers):
                continue
            # `delivery_date` is not the invoice date: a name word the concept does not
            # know means another field, whose label must be found as such.
            known = set().union(*concept.triggers, *(set(x.split()) for x in concept.labels))
            if {w for w in name_words if len(w) > 2} - known - _GENERIC_NAME_WORDS:
                continue
            return concept
    return None


_GENERIC_NAME_WORDS = frozenset(["the", "value", "field", "amount", "number", "date"])


def _fits(concept: Concept, field: Field) -> bool:
    """The concept's value can be of the field's data type."""
    kind, data_type = concept.kind, field.data_type
    if kind == DATE:
        return data_type.startswith("date")
    if kind == AMOUNT:
        return data_type in ("currency", "number", "percentage")
    return data_type in ("text", "name", "number", "integer") and not data_type.startswith("date")


def _label_pattern(label: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in label.split()]
    return re.compile(r"(?<![^\W\d_])" + r"[\s._/°º#-]*".join(words) + r"(?![^\W\d_])")


@dataclass(frozen=True, slots=True)
class Hit:
    line: int
    rest: str  # the text after the label on its line
    before: str


def _hits(lines: Sequence[str], label: str, exclude: Sequence[str]) -> list[Hit]:
    pattern = _label_pattern(label)
    hits = []
    for i, line in enumerate(lines):
        folded = _fold(line)
        if exclude and set(re.findall(r"[a-z]+", folded)) & set(exclude):
            continue
        for match in pattern.finditer(folded):
            # Folding keeps positions for Latin text (one character per character).
            offset = match.end() if len(folded) == len(line) else len(line)
            hits.append(Hit(i, line[offset:], line[: match.start()]))
    return hits


def _starts_other_label(rest: str, label: str) -> bool:
    first = re.match(r"\s*([^\W\d_]+)", _fold(rest))
    if first is None:
        return False
    return first.group(1) in _OTHER_LABEL_WORDS and first.group(1) not in label.split()


def _value_in(text: str, kind: str, field: Field) -> JsonValue:
    text = text.strip(_SEPARATORS)
    if not text:
        return None
    if kind == ID:
        text = _ID_CONNECTORS.sub("", text).strip(_SEPARATORS)
        match = _ID_TOKEN.match(text)
        if match is None:
            return None
        token = match.group(0)
        # `DE 232 446 240`: a country prefix and digit groups form one tax number.
        groups = re.match(r"[A-Z]{2}(?:\s?\d{2,4}){2,6}\b", text)
        if groups:
            token = groups.group(0)
        if not any(ch.isdigit() for ch in token) or len(token) < 2:
            return None
        if find_date(token) is not None and re.fullmatch(r"[\d./-]+", token):
            return None  # a date on the next line is not a number
        return _typed(token, field)
    if kind == AMOUNT:
        amounts = [a for a in numbers(text) if not a.percent]
        return _typed(amounts[-1].text, field) if amounts else None
    if kind == DATE:
        # The date right after its label: in `Date limite de paiement le 05 Juillet 2015` the
        # label `Date` announces another date than the one at the end of the sentence.
        found = find_date(text[:30], day_first=field.data_type != "date_mdy")
        return None if found is None else _typed(found.isoformat(), field)
    if kind == IBAN:
        for match in _IBAN.finditer(text.upper()):
            iban = match.group(1).replace(" ", "")
            if iban_valid(iban):
                return iban
        return None
    if kind == BIC:
        match = _BIC.search(text)
        return match.group(1) if match else None
    return _typed(re.split(r"\s{2,}|\s[A-Z][\w ]{1,20}:", text)[0], field)


def _typed(value: str, field: Field) -> JsonValue:
    try:
        return normalise(value, field.data_type)
    except InvalidValue:
        return None


def iban_valid(iban: str) -> bool:
    """ISO 13616 check digits: the number mod 97 is 1."""
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", iban):
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _is_label_line(line: str) -> bool:
    return bool(_LABEL_LINE.match(line.strip()))


def stacked(lines: Sequence[str], i: int) -> str | None:
    """Labels printed as a block after a block of values (two PDF text columns read one
    after the other): `Jan 1, 2022 / $127.50 / Date: / Balance Due:` pairs by position."""
    start = i
    while start > 0 and _is_label_line(lines[start - 1]):
        start -= 1
    end = i
    while end + 1 < len(lines) and _is_label_line(lines[end + 1]):
        end += 1
    count = end - start + 1
    if count < 2 or start < count:
        return None
    values = lines[start - count : start]
    if any(_is_label_line(v) for v in values):
        return None
    return values[i - start]


def _is_header_row(lines: Sequence[str], hit: Hit) -> bool:
    """A row of several labels (no values, no colons) over a row of several values."""
    header = lines[hit.line]
    if any(ch.isdigit() or ch == ":" for ch in header) or hit.line + 1 >= len(lines):
        return False
    if not (hit.before.strip() or hit.rest.strip(_SEPARATORS)):
        return False  # a label alone on its line announces the next line
    values = lines[hit.line + 1].split()
    return len(values) >= 2 and sum(any(ch.isdigit() for ch in v) for v in values) >= 2


def _column(lines: Sequence[str], hit: Hit) -> str | None:
    """The value in the label's column. Without positions, the label's place along the
    header (its middle, as a share of the header's length) picks the value at the same
    share of the row: exact for the first and the last column, and for evenly spaced ones."""
    values = lines[hit.line + 1].split()
    header = lines[hit.line]
    start = len(hit.before)
    end = len(header) - len(hit.rest)
    share = (start + end) / 2 / max(len(header), 1)
    return values[min(len(values) - 1, int(share * len(values)))]


def labelled_value(lines: Sequence[str], field: Field, concept: Concept) -> JsonValue:
    """The value of `field` next to one of `concept`'s labels, or None."""
    labels = _field_labels(field, concept)
    for label in labels:
        for hit in _hits(lines, label, concept.exclude):
            if concept.kind in (ID, DATE) and _is_header_row(lines, hit):
                if _starts_other_label(hit.rest, label):
                    continue  # `Factuur datum` in a header is the date's column
                value = _value_in(_column(lines, hit) or "", concept.kind, field)
                if value is not None:
                    return value
                continue
            if _starts_other_label(hit.rest, label):
                continue
            value = _value_in(hit.rest, concept.kind, field)
            if value is not None:
                return value
            if hit.rest.strip(_SEPARATORS):
                continue  # something else follows the label: not this field's value
            for candidate in (stacked(lines, hit.line), _next_line(lines, hit.line)):
                if candidate is not None:
                    value = _value_in(candidate, concept.kind, field)
                    if value is not None:
                        return value
    return None


def _next_line(lines: Sequence[str], i: int) -> str | None:
    if i + 1 >= len(lines) or _is_label_line(lines[i + 1]):
        return None
    return lines[i + 1]


def _field_labels(field: Field, concept: Concept) -> list[str]:
    """The field's own name first (users name fields as their documents label them),
    then the concept's labels."""
    own = " ".join(re.findall(r"[a-z]+", _fold(field.name)))
    if own in concept.labels:
        return list(concept.labels)  # the concept knows better which of its labels come first
    return list(dict.fromkeys([own, *concept.labels]))


def anywhere(text: str, field: Field, concept: Concept | None) -> JsonValue:
    """Values recognisable without a label: an IBAN by its checksum."""
    if concept is not None and concept.kind == IBAN:
        return _value_in(text, IBAN, field)
    return None


def generic_concept(field: Field) -> Concept:
    """A concept made from the field's own words, for fields no concept knows."""
    words = [w for w in re.findall(r"[a-z]+", _fold(field.name)) if w]
    instruction = [w for w in re.findall(r"[a-z]+", _fold(field.instruction)) if w not in _STOP]
    labels = [" ".join(words)]
    if len(instruction) >= 2:
        labels.append(" ".join(instruction[:3]))
    if field.data_type.startswith("date"):
        kind = DATE
    elif field.data_type in ("currency", "number", "percentage", "integer"):
        kind = AMOUNT
    elif set(words) & {"number", "no", "nr", "id", "code", "ref", "reference", "num"}:
        kind = ID
    else:
        kind = TEXT
    return Concept("generic", (), tuple(dict.fromkeys(x for x in labels if x)), kind)


_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "on",
        "in",
        "for",
        "to",
        "and",
        "or",
        "is",
        "as",
        "from",
        "this",
        "that",
        "value",
        "field",
        "document",
        "extract",
        "find",
        "get",
        "give",
        "written",
        "shown",
        "which",
        "what",
    ]
)
