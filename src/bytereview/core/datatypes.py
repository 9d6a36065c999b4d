"""The data types a field can have: the one table behind seeding, validation and schemas.

The jobs service seeds its `data_types` rows from it; the extractor builds JSON schemas
from it when no rows are supplied (preview); field validation knows its ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DataType:
    id: str
    display_name: str
    json_type: str
    format: str
    description: str
    # Text with no canonical form (a name, an address): a user's correction is kept as
    # written, where other types are read into theirs (bytereview/values/typed.py).
    free_text: bool = False


DATA_TYPES: tuple[DataType, ...] = (
    DataType("text", "Text", "string", "", "Free text, as written in the document.", True),
    DataType("email", "Email", "string", "email", "An email address, lower-cased."),
    DataType(
        "phone", "Phone", "string", "phone", "A phone number, digits with a leading + if present."
    ),
    DataType("address", "Address", "string", "address", "A postal address on one line.", True),
    DataType("name", "Name", "string", "name", "A person's or organisation's name.", True),
    DataType("url", "URL", "string", "uri", "A web address."),
    DataType("number", "Number", "number", "", "A decimal number, without thousands separators."),
    DataType(
        "currency", "Currency", "number", "currency", "A money amount as a number, no symbol."
    ),
    DataType(
        "percentage",
        "Percentage",
        "number",
        "percentage",
        "A percentage as a number: 12.5 for 12.5%.",
    ),
    DataType("integer", "Integer", "integer", "", "A whole number."),
    DataType(
        "date",
        "Date",
        "string",
        "date",
        "A date, given as YYYY-MM-DD; whether the document writes the day or the month first"
        " is read from the document.",
    ),
    DataType(
        "date_mdy", "Date (MM/DD/YYYY)", "string", "MM/DD/YYYY", "A date written month first."
    ),
    DataType("date_dmy", "Date (DD/MM/YYYY)", "string", "DD/MM/YYYY", "A date written day first."),
    DataType("date_ymd", "Date (YYYY-MM-DD)", "string", "date", "An ISO 8601 date."),
    DataType("time", "Time", "string", "time", "A time of day, 24-hour HH:MM[:SS]."),
    DataType("boolean", "Yes/No", "boolean", "", "true or false."),
)

BY_ID: Mapping[str, DataType] = {t.id: t for t in DATA_TYPES}
