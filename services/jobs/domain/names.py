"""Resource names (AIP-122) and page sizes: parsed and validated in one place.

Page tokens have a module of their own (`pages.tokens`, with `keyset` for the SQL)."""

from __future__ import annotations

import re

from bytereview.core.errors import InvalidArgument

_ID = r"[0-9a-f]{32}"
# Version numbers: 1, 2, 3 ... (at most nine digits: always a 32-bit integer).
_VERSION = r"[1-9][0-9]{0,8}"
_PATTERNS = {
    "job": re.compile(rf"^jobs/(?P<job>{_ID})$"),
    "file": re.compile(rf"^jobs/(?P<job>{_ID})/files/(?P<file>{_ID})$"),
    "task": re.compile(rf"^jobs/(?P<job>{_ID})/tasks/(?P<task>{_ID})$"),
    "result": re.compile(rf"^jobs/(?P<job>{_ID})/results/(?P<result>{_ID})$"),
    "template": re.compile(rf"^templates/(?P<template>{_ID})$"),
    "system_prompt": re.compile(rf"^systemPrompts/(?P<system_prompt>{_ID})$"),
    "user": re.compile(rf"^users/(?P<user>{_ID}|me)$"),
    "api_key": re.compile(rf"^users/(?P<user>{_ID}|me)/apiKeys/(?P<api_key>{_ID})$"),
    "result_version": re.compile(
        rf"^jobs/(?P<job>{_ID})/results/(?P<result>{_ID})/versions/(?P<result_version>{_VERSION})$"
    ),
    "template_version": re.compile(
        rf"^templates/(?P<template>{_ID})/versions/(?P<template_version>{_VERSION})$"
    ),
    "golden_document": re.compile(
        rf"^templates/(?P<template>{_ID})/goldenDocuments/(?P<golden_document>{_ID})$"
    ),
}

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def parse(kind: str, name: str, *, field: str = "name") -> dict[str, str]:
    """The ids in `name`, or InvalidArgument naming the expected pattern."""
    match = _PATTERNS[kind].match(name or "")
    if match is None:
        expected = _PATTERNS[kind].pattern.strip("^$").replace(f"(?P<{kind}>{_ID})", f"{{{kind}}}")
        expected = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", expected)
        raise InvalidArgument(f"{field} must look like {expected!r}, got {name!r}")
    return match.groupdict()


def job_name(job_id: str) -> str:
    return f"jobs/{job_id}"


def file_name(job_id: str, file_id: str) -> str:
    return f"jobs/{job_id}/files/{file_id}"


def task_name(job_id: str, task_id: str) -> str:
    return f"jobs/{job_id}/tasks/{task_id}"


def result_name(job_id: str, result_id: str) -> str:
    return f"jobs/{job_id}/results/{result_id}"


def template_name(template_id: str) -> str:
    return f"templates/{template_id}"


def result_version_name(job_id: str, result_id: str, version: int) -> str:
    return f"jobs/{job_id}/results/{result_id}/versions/{version}"


def template_version_name(template_id: str, version: int) -> str:
    return f"templates/{template_id}/versions/{version}"


def golden_document_name(template_id: str, golden_id: str) -> str:
    return f"templates/{template_id}/goldenDocuments/{golden_id}"


def user_name(user_id: str) -> str:
    return f"users/{user_id}"


def api_key_name(user_id: str, key_id: str) -> str:
    return f"users/{user_id}/apiKeys/{key_id}"


def page_size(requested: int) -> int:
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be between 0 and {MAX_PAGE_SIZE}, got {requested}")
    return requested or DEFAULT_PAGE_SIZE
