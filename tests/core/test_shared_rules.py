"""Rules several components share, each in one module of bytereview.core: the storage-key
layout, length limits, the data-type table."""

from __future__ import annotations

import pytest

from bytereview.core import storage_keys
from bytereview.core.datatypes import BY_ID, DATA_TYPES
from bytereview.core.errors import InvalidArgument
from bytereview.core.limits import MAX_DISPLAY_NAME, check_length
from services.extract.schema import DEFAULT_TYPES

JOB, FILE = "a" * 32, "b" * 32


def test_the_key_layout() -> None:
    assert storage_keys.job_prefix(JOB) == f"jobs/{JOB}/"
    assert storage_keys.upload_key(JOB, FILE) == f"jobs/{JOB}/uploads/{FILE}"
    prefix = storage_keys.entry_prefix(JOB, FILE)
    assert prefix == f"jobs/{JOB}/entries/{FILE}/"
    assert storage_keys.entry_key(prefix, 7) == f"jobs/{JOB}/entries/{FILE}/7"


@pytest.mark.parametrize(
    ("key", "upload"),
    [
        (f"jobs/{JOB}/uploads/{FILE}", True),
        (f"jobs/{JOB}/entries/{FILE}/0", False),  # only the worker writes entries
        (f"jobs/{JOB}/uploads/{FILE}/x", False),
        (f"jobs/{JOB.upper()}/uploads/{FILE}", False),
        (f"jobs/{JOB}/uploads/../{FILE}", False),
        (f"elsewhere/{JOB}/uploads/{FILE}", False),
    ],
)
def test_signed_urls_may_write_upload_keys_only(key: str, upload: bool) -> None:
    assert storage_keys.is_upload_key(key) is upload


def test_keys_inside_a_job() -> None:
    assert storage_keys.is_in_job(f"jobs/{JOB}/entries/{FILE}/0", JOB)
    assert not storage_keys.is_in_job(f"jobs/{FILE}/entries/{FILE}/0", JOB)
    assert not storage_keys.is_in_job(f"jobs/{JOB}/../{FILE}/x", JOB)
    assert storage_keys.job_of_key(f"jobs/{JOB}/uploads/{FILE}") == JOB
    assert storage_keys.job_of_key(f"jobs/{JOB}/") is None
    assert storage_keys.job_of_key("jobs/short/uploads/x") is None


def test_check_length() -> None:
    assert check_length("x" * MAX_DISPLAY_NAME, MAX_DISPLAY_NAME, field="display_name")
    with pytest.raises(InvalidArgument, match="display_name must be at most 200 characters"):
        check_length("x" * (MAX_DISPLAY_NAME + 1), MAX_DISPLAY_NAME, field="display_name")


def test_one_data_type_table() -> None:
    assert len(DATA_TYPES) == len(BY_ID) == 16
    # The extractor's schema types are the table's, in its order.
    assert list(DEFAULT_TYPES) == [t.id for t in DATA_TYPES]
    assert DEFAULT_TYPES["date_mdy"].format == "MM/DD/YYYY"
    assert DEFAULT_TYPES["date"].format == "date"  # ISO 8601, whatever the document writes
    assert DEFAULT_TYPES["integer"].json_type == "integer"
