"""What counts as a change of a result's values (a new version is made only for one)."""

from __future__ import annotations

from services.jobs.domain.results.versions import changes


def test_only_values_that_differ_are_changes() -> None:
    stored = {"count": 5, "total": "10.00", "paid": False, "note": None}
    # A client sends the whole map back; protobuf's numbers are doubles (5 -> 5.0).
    sent = {"count": 5.0, "total": "12.00", "paid": False, "note": None}
    assert changes(stored, sent) == [{"field": "total", "old": "10.00", "new": "12.00"}]
    assert changes(stored, {**stored, "count": 5.5}) == [{"field": "count", "old": 5, "new": 5.5}]
    assert changes(stored, {**stored, "note": ""}) == [{"field": "note", "old": None, "new": ""}]
    assert changes({"a": 1}, {"a": 1, "b": None}) == []  # absent reads as null
