"""Request ids, logged with every line of their call: kept only when short and safe."""

from __future__ import annotations

import pytest

from bytereview.core.rpc import safe_request_id


@pytest.mark.parametrize("given", ["req-42.a:b", b"req-42.a:b", "x" * 64])
def test_a_safe_id_is_kept(given: str | bytes) -> None:
    assert safe_request_id(given) == (given.decode() if isinstance(given, bytes) else given)


@pytest.mark.parametrize(
    "given",
    ["", None, "a b", "x" * 65, "id\nforged log line", "é", b"\xff\xfe", "x" * 8000],
)
def test_anything_else_gets_a_new_id(given: str | bytes | None) -> None:
    made = safe_request_id(given)
    assert made != given
    assert len(made) == 32
    assert made != safe_request_id(given)  # a new one each time
