"""Keyset pages in SQL: order by a key ending in a unique column, start after a page token's key.

Paired with `pages.tokens` (the codec): `Keyset` says how a query is ordered, `after()` turns
a decoded key into the WHERE clause, `token()` makes the next page's token from the last row.
All columns of a key sort one way, so one row comparison `(a, b) > (x, y)` expresses "after"
and an index on the same columns serves it (migration 0006 adds those indexes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import literal, tuple_
from sqlalchemy.sql.elements import ColumnElement

from bytereview.core.errors import InvalidArgument
from services.jobs.domain.pages.tokens import Key, KeyValue, PageTokens

Row = TypeVar("Row")


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


def page_of(
    rows: Sequence[Row],
    size: int,
    *,
    codec: PageTokens,
    scope: str,
    key_of: Callable[[Row], Sequence[KeyValue]],
) -> tuple[list[Row], str]:
    """The first `size` of `rows` (fetched with LIMIT size + 1) and the next page's token."""
    page = list(rows[:size])
    if len(rows) <= size:
        return page, ""
    return page, codec.encode(scope, key_of(page[-1]))
