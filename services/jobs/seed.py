"""Seed rows every installation has: the 15 data types and the first system prompt."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.jobs import models

# id, display name, JSON type, format, description
DATA_TYPES: tuple[tuple[str, str, str, str, str], ...] = (
    ("text", "Text", "string", "", "Free text, as written in the document."),
    ("email", "Email", "string", "email", "An email address, lower-cased."),
    ("phone", "Phone", "string", "phone", "A phone number, digits with a leading + if present."),
    ("address", "Address", "string", "address", "A postal address on one line."),
    ("name", "Name", "string", "name", "A person's or organisation's name."),
    ("url", "URL", "string", "uri", "A web address."),
    ("number", "Number", "number", "", "A decimal number, without thousands separators."),
    ("currency", "Currency", "number", "currency", "A money amount as a number, no symbol."),
    (
        "percentage",
        "Percentage",
        "number",
        "percentage",
        "A percentage as a number: 12.5 for 12.5%.",
    ),
    ("integer", "Integer", "integer", "", "A whole number."),
    ("date_mdy", "Date (MM/DD/YYYY)", "string", "MM/DD/YYYY", "A date written month first."),
    ("date_dmy", "Date (DD/MM/YYYY)", "string", "DD/MM/YYYY", "A date written day first."),
    ("date_ymd", "Date (YYYY-MM-DD)", "string", "date", "An ISO 8601 date."),
    ("time", "Time", "string", "time", "A time of day, 24-hour HH:MM[:SS]."),
    ("boolean", "Yes/No", "boolean", "", "true or false."),
)

SYSTEM_PROMPT_V1 = """You extract structured data from business documents.
Return exactly the fields asked for, as JSON matching the given schema.
Use the document's own values; do not invent data. When a field is absent, return null.
Normalise values to each field's data type and format: dates in the requested format,
numbers without currency symbols or thousands separators, booleans as true or false.
"""


async def seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Insert missing seed rows; existing ones (maybe edited by an admin) are left alone."""
    async with sessions.begin() as session:
        have = set((await session.scalars(select(models.DataType.id))).all())
        for position, (type_id, display, json_type, fmt, description) in enumerate(DATA_TYPES):
            if type_id not in have:
                session.add(
                    models.DataType(
                        id=type_id,
                        display_name=display,
                        json_type=json_type,
                        format=fmt,
                        description=description,
                        position=position,
                    )
                )
        prompt = await session.scalar(select(models.SystemPrompt.id).limit(1))
        if prompt is None:
            session.add(models.SystemPrompt(version=1, text=SYSTEM_PROMPT_V1, active=True))
