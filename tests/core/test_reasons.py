"""An exception's message as a user reads it (core/reasons.py)."""

from __future__ import annotations

import io
import tempfile

import pytest
from PIL import Image, UnidentifiedImageError

from bytereview.core.reasons import MAX_REASON, reason_of


@pytest.mark.parametrize("spooled", [True, False], ids=["spooled", "bytes"])
def test_pillows_file_object_is_left_out(spooled: bool) -> None:
    with tempfile.SpooledTemporaryFile() if spooled else io.BytesIO() as handle:
        handle.write(b"GIF89a\x00\x00\x00")
        handle.seek(0)
        with pytest.raises(UnidentifiedImageError) as caught:
            Image.open(handle)
    assert "object at 0x" in str(caught.value)
    assert reason_of(caught.value) == "cannot identify image file"


def test_a_reason_is_one_line_of_bounded_length_and_never_empty() -> None:
    assert reason_of(ValueError("a\n  b")) == "a b"
    assert len(reason_of(ValueError("x" * 5000))) == MAX_REASON
    assert reason_of(ValueError("<_io.BufferedReader name=3>")) == "ValueError"
