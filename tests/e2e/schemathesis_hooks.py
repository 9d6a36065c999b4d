"""Generation rules schemathesis cannot read from the OpenAPI document (loaded through
SCHEMATHESIS_HOOKS by test_schemathesis.py), each the documented schemathesis way.

- `page-token`: the document declares page tokens opaque (`format: page-token`): only a
  `nextPageToken` the server handed out is valid, so no generator can make one up. The empty
  token (the first page) is the one value a client may send without having been given it.
- Uniqueness of list items by a key (`x-unique-by` in the document: declared files by path,
  fields by name ignoring case), which JSON Schema's `uniqueItems` cannot say: a generated
  request whose items collide is not a schema-valid one, so it is not sent as one.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

from bytereview.core import InvalidArgument
from services.jobs.domain.paths import clean_path

schemathesis.openapi.format("page-token", st.just(""))


def _collide(items: object, key: str) -> bool:
    if not isinstance(items, list):
        return False
    seen: set[str] = set()
    for item in items:
        value = item.get(key) if isinstance(item, dict) else None
        if not isinstance(value, str):
            continue
        try:
            normal = clean_path(value, field=key) if key == "path" else value.strip().lower()
        except InvalidArgument:
            continue  # not valid anyway: the server says so on its own
        if normal in seen:
            return True
        seen.add(normal)
    return False


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    body = case.body
    if not isinstance(body, dict):
        return True
    return not (_collide(body.get("files"), "path") or _collide(body.get("fields"), "name"))
