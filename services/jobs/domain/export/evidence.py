"""Evidence columns for exports (`include_evidence`): per field its confidence, whether
its quote was verified, the page and the quote, after the values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.jobs.store import models

SUFFIXES = ("confidence", "verified", "page", "quote")


def header(field_names: Sequence[str]) -> list[str]:
    return [f"{name}.{suffix}" for name in field_names for suffix in SUFFIXES]


def cells(result: models.Result, field_names: Sequence[str]) -> list[Any]:
    out: list[Any] = []
    for name in field_names:
        assessment = (result.assessments or {}).get(name)
        if assessment is None:
            out.extend([None] * len(SUFFIXES))
            continue
        evidence = assessment.get("evidence") or {}
        out.extend(
            [
                assessment.get("confidence"),
                assessment.get("verified"),
                evidence.get("page") or None,
                evidence.get("quote") or None,
            ]
        )
    return out


def json_item(result: models.Result, field_names: Sequence[str]) -> dict[str, Any]:
    return {name: (result.assessments or {}).get(name) for name in field_names}
