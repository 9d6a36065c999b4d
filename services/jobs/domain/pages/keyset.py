"""Keyset pages in SQL: order by a key ending in a unique column, start after a page token's key.

Paired with `pages.tokens` (the codec): `Keyset` says how a query is ordered, `after()` turns
a decoded key into the WHERE clause, `token()` makes the next page's token from the last row.
All columns of a key sort one way, so one row comparison `(a, b) > (x, y)` expresses "after"
and an index on the same columns serves it (migration 0006 adds those indexes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, TypeVarTuple, cast

from sqlalchemy import Select, literal, tuple_
from sqlalchemy.engine import Row as SqlRow
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.sql.elements import ColumnElement

from bytereview.core.errors import InvalidArgument
from services.jobs.domain.pages.tokens import Key, KeyValue, PageTokens
from services.jobs.domain.pages.uncut import uncut

Row = TypeVar("Row")
Columns = TypeVarTuple("Columns")


@dataclass(frozen=True, slots=True)
class Keyset:
    # Mapped attributes (`models.Job.id`) or SQL expressions; the last one unique.
    columns: Sequence[Any]
    descending: bool = False

    @property
    def names(self) -> list[str]:
        """Attribute names of the columns, to read a row's key (mapped attributes only)."""
        return [str(c.key) for c in self.columns]

    def order_by(self) -> list[ColumnElement[Any]]:
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def after(self, key: Key | None) -> list[ColumnElement[bool]]:
        """The condition for rows strictly after `key` (none for the first page)."""
        if key is None:
            return []
        if len(key) != len(self.columns):
            raise InvalidArgument("page_token is malformed")
        left = tuple_(*self.columns)
        right = tuple_(*(literal(v, type_=c.type) for c, v in zip(self.columns, key, strict=True)))
        return [left < right if self.descending else left > right]


# A page stops once its rows weigh this much (estimated as text, `estimated_bytes`), whatever
# its page_size: a gRPC client receives at most 4 MiB a reply unless it raises that limit
# (a partner's client, as grpcio ships), and 1,000 templates of 100 fields with 2,000-character
# instructions are ~200 MB, 100 results of 100 corrected values of 10,000 characters ~100
# MB: the owner of such data got RESOURCE_EXHAUSTED, and only small page sizes listed it.
# Fewer rows than page_size, with a next page token, is what AIP-158 allows a list to answer;
# the estimate runs above the encoded size, and a MiB is left for what it does not count.
PAGE_BYTES = 3 * 1024 * 1024


_SCALARS = (int, float, dt.datetime, dt.date, type(None))


def estimated_bytes(row: object, depth: int = 2) -> int:
    """About what a row weighs in a reply, as text: an ORM object's loaded attributes (the
    objects of its loaded relationships too, `depth` levels down), a dataclass's fields, the
    items of a list or a JSON object, a string's length; a number or a time counts 8. Only
    loaded state is read (an expired attribute would be a query), and nothing is formatted
    that need not be: ListFiles weighs 1,000 rows a page."""
    if isinstance(row, str):
        return len(row)
    if isinstance(row, _SCALARS):
        return 8
    if isinstance(row, list | tuple):
        return sum(estimated_bytes(item, depth) for item in row)
    if isinstance(row, dict):
        return sum(len(str(k)) + estimated_bytes(v, depth) for k, v in row.items())
    if isinstance(row, DeclarativeBase):
        if depth == 0:
            return 0
        total = 0
        for key, value in vars(row).items():  # inlined for the common cases: ListFiles' rows
            if type(value) is str:
                total += len(value)
            elif key[0] != "_" and not isinstance(value, _SCALARS):
                total += estimated_bytes(value, depth - 1)
            else:
                total += 8
        return total
    if dataclasses.is_dataclass(row):
        return sum(estimated_bytes(getattr(row, f.name), depth) for f in dataclasses.fields(row))
    return len(str(row))


def page_of(
    rows: Sequence[Row],
    size: int,
    *,
    codec: PageTokens,
    scope: str,
    key_of: Callable[[Row], Sequence[KeyValue]],
) -> tuple[list[Row], str]:
    """The first `size` of `rows` (fetched with LIMIT size + 1), fewer once they weigh
    PAGE_BYTES (always one), and the next page's token."""
    page: list[Row] = []
    weight = 0
    for row in rows[:size]:
        weight += estimated_bytes(row)
        if page and weight > PAGE_BYTES:
            break
        page.append(row)
    if len(page) == len(rows):
        return page, ""
    return page, codec.encode(scope, key_of(page[-1]))


# Rows taken from the database cursor at a time while a page is read (see `read_page`).
FETCH_ROWS = 8


async def read_page(session: AsyncSession, query: Select[Row]) -> list[Row]:
    """The rows of `query` (ordered, LIMITed to page_size + 1 by the caller), read FETCH_ROWS
    at a time, and no more once they weigh PAGE_BYTES: `page_of` cuts the page there.

    `.all()` read every row first: a page of 1,000 results of 100 corrected values of 10,000
    characters held ~1 GB in the jobs service for one ListResults call, to answer 3 MiB of it,
    and a tenant could ask for that as often as it liked. At least two rows are read, so a
    first row over the budget alone still tells whether a next page follows.

    A cancellation of the caller takes effect once the page is read (`uncut`)."""
    return await uncut(_read_page(session, query))


async def _read_page(session: AsyncSession, query: Select[Row]) -> list[Row]:
    rows: list[Row] = []
    weight = 0
    result = await session.stream_scalars(query.execution_options(yield_per=FETCH_ROWS))
    try:
        async for row in result:
            rows.append(row)
            weight += estimated_bytes(row)
            if _full(weight, rows):
                break
    finally:
        await result.close()
    return rows


def _full(weight: int, rows: Sequence[object]) -> bool:
    return weight > PAGE_BYTES and len(rows) >= 2


def _values(row: SqlRow[*Columns]) -> tuple[object, ...]:
    """A row's values, to weigh: a Row is no `tuple` to `estimated_bytes`, which would
    weigh it by its repr (a few bytes for a 200 KB job)."""
    return tuple(cast("Sequence[object]", row))


async def read_rows(session: AsyncSession, query: Select[*Columns]) -> list[SqlRow[*Columns]]:
    """As `read_page`, for a query of several columns (rows, not single objects)."""
    return await uncut(_read_rows(session, query))


async def _read_rows(session: AsyncSession, query: Select[*Columns]) -> list[SqlRow[*Columns]]:
    rows: list[SqlRow[*Columns]] = []
    weight = 0
    result = await session.stream(query.execution_options(yield_per=FETCH_ROWS))
    try:
        async for row in result:
            rows.append(row)
            weight += estimated_bytes(_values(row))
            if _full(weight, rows):
                break
    finally:
        await result.close()
    return rows


def read_rows_sync(session: Session, query: Select[*Columns]) -> list[SqlRow[*Columns]]:
    """`read_rows` in a synchronous session (work run through `run_sync`)."""
    rows: list[SqlRow[*Columns]] = []
    weight = 0
    result = session.execute(query.execution_options(yield_per=FETCH_ROWS))
    try:
        for row in result:
            rows.append(row)
            weight += estimated_bytes(_values(row))
            if _full(weight, rows):
                break
    finally:
        result.close()
    return rows
