"""Seed rows every installation has: the 16 data types and the first system prompt.

The data types come from `bytereview.core.datatypes`, the table the extractor uses too.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bytereview.core.datatypes import DATA_TYPES
from services.jobs.store import models

SYSTEM_PROMPT_V1 = """You extract structured data from business documents.
Return exactly the fields asked for, as JSON matching the given schema.
Use the document's own values; do not invent data. When a field is absent, return null.
Normalise values to each field's data type and format: dates in the requested format,
numbers without currency symbols or thousands separators, booleans as true or false.
"""


async def seed_database(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Insert missing seed rows; existing ones (maybe edited by an admin) are left alone."""
    async with sessions.begin() as session:
        have = set((await session.scalars(select(models.DataType.id))).all())
        for position, data_type in enumerate(DATA_TYPES):
            if data_type.id not in have:
                session.add(
                    models.DataType(
                        id=data_type.id,
                        display_name=data_type.display_name,
                        json_type=data_type.json_type,
                        format=data_type.format,
                        description=data_type.description,
                        position=position,
                    )
                )
        prompt = await session.scalar(select(models.SystemPrompt.id).limit(1))
        if prompt is None:
            session.add(models.SystemPrompt(version=1, text=SYSTEM_PROMPT_V1, active=True))
