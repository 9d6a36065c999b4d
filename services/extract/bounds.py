"""Bounds on what an extractor reports, applied to its answer before anything reads it.

A model can answer with anything its output allows: a whole document quoted into one field,
thousands of fields nobody asked for, values nested as deep as its parser lets it. The
platform keeps only what the job asked for, each value a single value of at most
MAX_VALUE_CHARS characters (what a user may type as a correction), so a task's result is
always one the jobs service accepts and a person can read and correct.

A value past the bound is set to null with a problem noted, and its assessment asks for
review (confidence 0), rather than cut with a marker: no field's real value is ten thousand
characters long (an address, a description), so such an answer is the model quoting the
document, and its first ten thousand characters are no more the value than the rest. A cut
value would look like data in every export; a null one asks the reviewer to fill it in.
It is a clear outcome of the task: it succeeds with its other values, and is never retried.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from bytereview.core.limits import (
    MAX_FILES_PER_COMBINED_TASK,
    MAX_PAGES_PER_COMBINED_TASK,
    MAX_VALUE_CHARS,
)
from bytereview.jobs.v1 import resources_pb2
from services.extract.base import Extraction
from services.extract.schema import Field

T = TypeVar("T")


def bounded(extraction: Extraction, fields: Sequence[Field]) -> tuple[Extraction, dict[str, str]]:
    """`extraction` with only the job's fields, and the values past the bounds set to None;
    with the problem of each value set to None (field name -> why)."""
    names = {f.name for f in fields}
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for field in fields:  # in the job's order, as results list them
        name = field.name
        value = extraction.values.get(name)
        problem = _problem(value)
        if problem:
            problems[name] = problem
            value = None
        values[name] = value
    out = dataclasses.replace(
        extraction,
        values=values,
        sources=_known(extraction.sources, names),
        evidence=_known(extraction.evidence, names),
        methods=_known(extraction.methods, names),
    )
    return out, problems


# A problem names the answer it could not read (`'31/02/2024' is not a date`); a model's
# answer may be thousands of characters, and the note is for reading, not for the answer.
MAX_PROBLEM = 300


def to_review(
    assessments: Mapping[str, resources_pb2.ValueAssessment], emptied: Mapping[str, str]
) -> None:
    """The values set to None though the extractor answered (past the bounds, or not
    readable as their type) need a person, told why (`problem`): confidence 0 puts them in
    the review queue whatever the threshold, where an empty value would otherwise pass as
    one the document does not print."""
    for name, problem in emptied.items():
        if name in assessments:
            assessments[name].confidence = 0.0
            assessments[name].verified = False
            assessments[name].problem = _shortened(problem)


def _shortened(problem: str) -> str:
    if len(problem) <= MAX_PROBLEM:
        return problem
    return problem[: MAX_PROBLEM - 1] + "…"


def combined_too_big(folder: str, page_counts: Sequence[int]) -> str:
    """Why a combined task of files with `page_counts` cannot run, or ''. StartJob refuses
    such a folder (services/jobs/domain/tasks/combined.py); a job started before that check
    may still hold one, and its call could pass the maximum run time on every delivery."""
    if len(page_counts) > MAX_FILES_PER_COMBINED_TASK:
        count = f"{len(page_counts)} files; at most {MAX_FILES_PER_COMBINED_TASK}"
    elif sum(page_counts) > MAX_PAGES_PER_COMBINED_TASK:
        count = f"{sum(page_counts)} pages; at most {MAX_PAGES_PER_COMBINED_TASK}"
    else:
        return ""
    where = repr(folder) if folder else "the top level"
    return (
        f"folder {where} is too big to extract combined ({count} go to the model together): "
        "extract it file by file (a folder rule with TASK_MODE_INDIVIDUAL) or split it"
    )


def too_long(value: Any) -> bool:
    return isinstance(value, str) and len(value) > MAX_VALUE_CHARS


def _problem(value: Any) -> str:
    if isinstance(value, (dict, list)):
        # Its text would be Python's repr of it, of any size.
        kind = "a list" if isinstance(value, list) else "an object"
        return f"the extractor answered {kind}, not a single value"
    if too_long(value):
        return (
            f"the extractor answered {len(value)} characters, more than a value may hold "
            f"({MAX_VALUE_CHARS}); it quoted the document rather than the value"
        )
    return ""


def _known(mapping: Mapping[str, T], names: set[str]) -> dict[str, T]:
    return {k: v for k, v in mapping.items() if k in names}
