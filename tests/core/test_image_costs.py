"""Images judged by what their decoders would walk, before any decoder sees them."""

from __future__ import annotations

import io
import struct
import time

import pytest
from PIL import Image

from bytereview.core.image_costs import Streamed, decoding_problem
from bytereview.core.limits import (
    MAX_GIF_HEAD_BYTES,
    MAX_PNG_CHUNKS,
    MAX_PNG_OTHER_BYTES,
    MAX_PNG_OTHER_CHUNKS,
    MAX_WEBP_CHUNKS,
)
from tests.hostile_documents import bmp_header_claim, gif_comment, png_chunks, webp_frames


def _saved(fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    noise = Image.effect_noise((300, 200), 60)
    frames = [noise.convert("RGB"), noise.rotate(90).convert("RGB")]
    image = frames[0].convert("P") if fmt == "GIF" else frames[0]
    image.save(out, fmt, **options)
    return out.getvalue()


def _streamed(data: bytes, size: int) -> str:
    streamed = Streamed()
    for at in range(0, len(data), size):
        streamed.feed(data[at : at + size])
    return streamed.problem()


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("PNG", {}),
        ("PNG", {"save_all": True, "append_images": [Image.new("RGB", (300, 200))] * 20}),
        ("GIF", {"comment": b"scanned by the front desk", "save_all": True}),
        ("JPEG", {"progressive": True, "icc_profile": bytes(100_000)}),
        ("BMP", {}),
    ],
    ids=["png", "apng", "gif", "jpeg", "bmp"],
)
def test_files_encoders_write_pass_fed_whole_or_byte_by_byte(
    fmt: str, options: dict[str, object]
) -> None:
    data = _saved(fmt, **options)
    assert decoding_problem(io.BytesIO(data)) == ""
    for size in (1, 5, 4096):
        assert _streamed(data, size) == "", (fmt, size)


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (png_chunks(MAX_PNG_OTHER_CHUNKS + 1), f"more than {MAX_PNG_OTHER_CHUNKS} chunks other"),
        (png_chunks(MAX_PNG_CHUNKS + 1, kind=b"IDAT"), f"more than {MAX_PNG_CHUNKS} chunks;"),
        (
            png_chunks(2, size=MAX_PNG_OTHER_BYTES // 2 + 1),
            f"more than {MAX_PNG_OTHER_BYTES} bytes",
        ),
        (gif_comment(MAX_GIF_HEAD_BYTES), f"more than {MAX_GIF_HEAD_BYTES} bytes before"),
        (bmp_header_claim(100_000, 100_000), "declares a 100000-byte header"),
    ],
    ids=["png-private-chunks", "png-empty-image-chunks", "png-private-bytes", "gif-comment", "bmp"],
)
def test_past_each_limit_the_file_is_refused_fed_either_way(data: bytes, phrase: str) -> None:
    assert phrase in decoding_problem(io.BytesIO(data))
    assert phrase in _streamed(data, 7)


def test_just_under_the_limits_passes() -> None:
    assert decoding_problem(io.BytesIO(png_chunks(MAX_PNG_OTHER_CHUNKS - 10))) == ""
    assert decoding_problem(io.BytesIO(gif_comment(MAX_GIF_HEAD_BYTES - 10_000))) == ""


@pytest.mark.parametrize("size", [7, 4096, 1 << 20])
def test_a_webps_chunks_are_counted_across_reads_of_any_size(size: int) -> None:
    """libwebp lists every frame when it opens the file: 1.5 million one-pixel frames
    (64 MiB) took 270 MB to open a 100 x 100 image whose first frame alone was read."""
    assert "more than 10000 chunks" in _streamed(webp_frames(MAX_WEBP_CHUNKS + 1), size)
    assert _streamed(webp_frames(MAX_WEBP_CHUNKS - 2), size) == ""  # and VP8X, ANIM
    frames = [Image.new("RGB", (50, 40), (i * 8, 0, 0)) for i in range(30)]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:])
    assert _streamed(out.getvalue(), size) == ""  # a real animation
    assert decoding_problem(io.BytesIO(webp_frames(MAX_WEBP_CHUNKS + 1))) != ""


def test_walking_a_webp_of_empty_chunks_stops_at_the_limit() -> None:
    """Empty chunks are 8 bytes: 64 MiB of them were 8 million steps of the walk (5 CPU-
    seconds; 2 GiB uploads are walked whole as they are hashed), for a file libwebp opens
    in a fraction of a second."""
    image = webp_frames(1)
    empty = b"JUNK" + bytes(4)
    data = image[:4] + struct.pack("<I", len(image) - 8 + 8 * 2_000_000) + image[8:]
    streamed = Streamed()
    started = time.process_time()
    streamed.feed(data)
    for _ in range(100):
        streamed.feed(empty * 20_000)
    assert "more than 10000 chunks" in streamed.problem()
    assert time.process_time() - started < 1.0
