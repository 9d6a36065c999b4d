"""What one exported row says: the columns of an export and each result's values in them.

Kept apart from the streaming (`export.py`) so columns can be added (evidence, corrections)
without touching how bytes reach the client. Pure functions of a result and its file paths.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from services.jobs.domain.export import evidence
from services.jobs.domain.export.xlsx import SheetDate
from services.jobs.store import models


def cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False)


def _amount(value: Any) -> Any:
    """A currency value as a Decimal: the extractors store the document's decimals as a string
    ("30.90"); older results and models may hold a number (whose `30.90` lost its zero).
    A Decimal prints with its places in CSV and is a numeric 0.00 cell in XLSX."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return Decimal(f"{value:.2f}")
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
        return Decimal(value.strip())
    return cell(value)


def _date(value: Any, pattern: str) -> Any:
    """A date field's value as a SheetDate (a date cell in XLSX, its text in CSV); a value
    not in its field's form (an older result's) stays as it is."""
    if isinstance(value, str):
        try:
            return SheetDate(dt.datetime.strptime(value.strip(), pattern).date(), value, pattern)
        except ValueError:
            pass
    return cell(value)


SKIPPED_COLUMN = "files left out"


def skipped_note(result: models.Result) -> str:
    """The files a combined result left out, each with why: `a.pdf: reason; b.pdf: reason`."""
    return "; ".join(
        f"{s.get('path', '')}: {s.get('reason', '')}" for s in result.skipped_files or []
    )


@dataclass(frozen=True, slots=True)
class ExportLayout:
    """The job's fields in order, which of them hold money, and whether a `corrected` column
    (the fields a person set) is added: only when some value of the job was corrected, so
    exports of uncorrected jobs keep their columns."""

    field_names: Sequence[str]
    money: frozenset[str]
    # Date fields by name, each with the pattern its dates are stored in (typed.STORED_DATES).
    dates: Mapping[str, str] = field(default_factory=dict)
    corrected: bool = False
    # Evidence columns (`include_evidence`): per field its confidence, verification, page, quote.
    evidence: bool = False
    # A `files left out` column (combined mode: each unreadable file with why), only when some
    # result of the job left a file out, so other exports keep their columns.
    skipped: bool = False

    def header(self) -> list[str]:
        """The first row of a CSV or XLSX export."""
        return [
            "file",
            *self.field_names,
            *(["corrected"] if self.corrected else []),
            *([SKIPPED_COLUMN] if self.skipped else []),
            *(evidence.header(self.field_names) if self.evidence else []),
        ]

    def row(self, result: models.Result, paths: Sequence[str]) -> list[Any]:
        """A CSV/XLSX row: the result's file path(s), then one typed cell per field."""
        return [
            "; ".join(paths),
            *(self._cell(name, result.values.get(name)) for name in self.field_names),
            *(["; ".join(result.corrected_fields)] if self.corrected else []),
            *([skipped_note(result)] if self.skipped else []),
            *(evidence.cells(result, self.field_names) if self.evidence else []),
        ]

    def _cell(self, name: str, value: Any) -> Any:
        if name in self.money:
            return _amount(value)
        if name in self.dates:
            return _date(value, self.dates[name])
        return cell(value)

    def item(self, result: models.Result, paths: Sequence[str]) -> dict[str, Any]:
        """A JSON export's element: values as stored (money stays a decimal string)."""
        item = {
            "file": "; ".join(paths),
            "values": {name: result.values.get(name) for name in self.field_names},
            "edited": result.edited,
            "corrected": result.corrected_fields,
        }
        if self.skipped:
            item["skipped_files"] = [
                {"path": s.get("path", ""), "reason": s.get("reason", "")}
                for s in result.skipped_files or []
            ]
        if self.evidence:
            item["assessments"] = evidence.json_item(result, self.field_names)
        return item
