"""Hostile documents, built byte by byte (a few KiB each): PDFs whose pages cost pdfium
minutes or gigabytes, and images whose headers declare gigabytes of pixels."""

from __future__ import annotations

import io
import struct
import zlib


def pdf(objects: list[bytes]) -> bytes:
    """A PDF of `objects` (numbered from 1; object 1 is the catalog) with a correct xref."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def stream(content: bytes, entries: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(content), entries, content)


def one_page(
    content: bytes,
    *,
    size: tuple[int, int] = (612, 792),
    resources: bytes = b"<< >>",
    more: list[bytes] | None = None,
) -> bytes:
    """A one-page PDF drawing `content`; `more` are objects 5, 6, ... for its resources."""
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources %s "
            b"/Contents 4 0 R >>" % (size[0], size[1], resources),
            stream(content),
            *(more or []),
        ]
    )


def xobject_bomb(levels: int, fan: int = 4) -> bytes:
    """A page drawing form XObject 1, which draws form 2 `fan` times, ... `levels` deep:
    fan**(levels - 1) drawings of the last one. pdfium expands every drawing when it loads
    the page: at 4 x 10 levels, ~30 s and ~700 MB; every level more, four times that."""
    forms = []
    for level in range(levels):
        number = 5 + level
        if level + 1 < levels:
            resources = b"<< /XObject << /X %d 0 R >> >>" % (number + 1)
            body = b"q /X Do Q " * fan
        else:
            resources = b"<< >>"
            body = b"0 0 1 1 re f BT /F1 12 Tf (abcdefghijklmnop) Tj ET"
        forms.append(
            stream(
                body, b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources " + resources
            )
        )
    return one_page(b"q /X Do Q", resources=b"<< /XObject << /X 5 0 R >> >>", more=forms)


def blank_page(width_pt: int, height_pt: int) -> bytes:
    """A page with no text layer (so it is read by OCR) of the given size in points."""
    return one_page(b"0 0 0 rg 10 10 50 50 re f", size=(width_pt, height_pt))


def png_header_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of `width` x `height` white pixels: a few KiB for 100 Mpx (its rows
    are deflated in one go, each a filter byte and zeros)."""
    row = b"\0" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def tiff_header(width: int, height: int, *, padding: int = 0) -> bytes:
    """A little-endian TIFF whose first page declares `width` x `height` (LONG) pixels,
    uncompressed 1-bit, with one strip of whatever follows (the pixels are never there);
    its directory follows `padding` bytes (past the first bytes sniffed, if many)."""
    at = 8 + padding
    entries = [
        (256, 4, 1, width),  # ImageWidth
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 1),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 0),  # PhotometricInterpretation: white is zero
        (273, 4, 1, at + 2 + 12 * 8 + 4),  # StripOffsets: just after the directory
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, 16),  # StripByteCounts
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, value)
    head = b"II*\x00" + struct.pack("<I", at) + b"\0" * padding
    return head + ifd + struct.pack("<I", 0) + b"\0" * 16


def webp_vp8x_header(width: int, height: int) -> bytes:
    """A WebP whose VP8X chunk declares a `width` x `height` canvas (and nothing else)."""
    body = b"\0\0\0\0" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def tiff_pages(count: int) -> bytes:
    """A TIFF of `count` 1 x 1 pages sharing one byte of pixels: ~100 bytes a page."""
    header = 8
    ifd_size = 2 + 12 * 8 + 4
    pixel = header + count * ifd_size
    out = bytearray(b"II*\x00" + struct.pack("<I", header))
    for page in range(count):
        following = 0 if page == count - 1 else header + (page + 1) * ifd_size
        out += struct.pack("<H", 8)
        for tag, kind, value in (
            (256, 4, 1),  # ImageWidth
            (257, 4, 1),  # ImageLength
            (258, 3, 8),  # BitsPerSample
            (259, 3, 1),  # Compression: none
            (262, 3, 1),  # PhotometricInterpretation: black is zero
            (273, 4, pixel),  # StripOffsets
            (278, 4, 1),  # RowsPerStrip
            (279, 4, 1),  # StripByteCounts
        ):
            out += struct.pack("<HHII", tag, kind, 1, value)
        out += struct.pack("<I", following)
    return bytes(out + b"\x80")


def page_tree_bomb(references: int) -> bytes:
    """One page referenced `references` times from one /Kids array (6 bytes a reference):
    opening the PDF parses the array whole, ~90 bytes of pdfium's memory per reference."""
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] >>" % (b"4 0 R " * references),
            stream(b""),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 1 1] /Contents 3 0 R >>",
        ]
    )


def truncated_png() -> bytes:
    """A PNG cut in half: its header is whole (analysis reads the size and lets it through,
    as for any image whose pixels it does not decode), its pixels end early."""
    import io
    import random

    from PIL import Image

    noise = random.Random(1)
    image = Image.frombytes("L", (300, 200), bytes(noise.randrange(256) for _ in range(60_000)))
    data = io.BytesIO()
    image.save(data, "PNG")
    return data.getvalue()[: len(data.getvalue()) // 2]


def jpeg_scan_bomb(side: int, scans: int) -> bytes:
    """A progressive JPEG of a blank `side`-pixel square whose last scan (a refinement that
    adds nothing: one run of empty blocks) is repeated to make `scans` scans. ~100 bytes
    per scan, and libjpeg decodes each over the whole image."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (side, side), 255).save(out, "JPEG", progressive=True, quality=50)
    data = out.getvalue()
    segments = _jpeg_segments(data)
    have = sum(1 for marker, _ in segments if marker == 0xDA)
    assert [marker for marker, _ in segments[-2:]] == [0xC4, 0xDA]  # Huffman table, scan
    last = segments[-2][1] + segments[-1][1]
    body = b"".join(segment for _, segment in segments)
    return b"\xff\xd8" + body + last * (scans - have) + b"\xff\xd9"


def _jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, bytes) of each segment between SOI and EOI; a scan keeps its coded data."""
    at = 2
    segments = []
    while data[at + 1] != 0xD9:
        marker = data[at + 1]
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        end = at + 2 + length
        if marker == 0xDA:  # coded data runs to the next marker that is not a restart
            while not (data[end] == 0xFF and data[end + 1] not in (0, *range(0xD0, 0xD8))):
                end += 1
        segments.append((marker, data[at:end]))
        at = end
    return segments


def webp_padded(padding: int) -> bytes:
    """A valid 10 x 10 WebP (VP8X, then the image as VP8L) followed, inside its RIFF, by a
    chunk of `padding` zero bytes that decoders skip."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (10, 10), "white").save(out, "WEBP", lossless=True)
    image = out.getvalue()[12:]  # the VP8L chunk
    canvas = (9).to_bytes(3, "little") * 2  # width - 1, height - 1
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + canvas
    pad = b"JUNK" + struct.pack("<I", padding) + bytes(padding)
    body = b"WEBP" + vp8x + image + pad
    return b"RIFF" + struct.pack("<I", len(body)) + body


def tiff_strips(rows: int, pages: int = 1) -> bytes:
    """A TIFF of `pages` pages, each 1 pixel wide and `rows` rows of one-row strips (one
    strip offset and one byte count per row, the pages sharing one pixel's byte): 8 bytes
    per row, and Pillow makes ~170 bytes of Python objects of each."""
    offsets_at = 16
    offsets = struct.pack("<I", 8) * rows
    counts_at = offsets_at + len(offsets)
    counts = struct.pack("<I", 1) * rows
    first = counts_at + len(counts)
    tags = [
        (256, 3, 1, 1),  # width
        (257, 4, 1, rows),  # height
        (258, 3, 1, 8),  # bits per sample
        (259, 3, 1, 1),  # no compression
        (262, 3, 1, 1),  # black is zero
        (273, 4, rows, offsets_at),  # strip offsets
        (277, 3, 1, 1),  # samples per pixel
        (278, 3, 1, 1),  # rows per strip
        (279, 4, rows, counts_at),  # strip byte counts
    ]
    size = 2 + 12 * len(tags) + 4
    directories = b""
    for page in range(pages):
        directories += struct.pack("<H", len(tags))
        for tag, kind, count, value in tags:
            packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
            directories += struct.pack("<HHI", tag, kind, count) + packed
        following = first + size * (page + 1) if page + 1 < pages else 0
        directories += struct.pack("<I", following)
    header = b"II*\x00" + struct.pack("<I", first) + b"\xff" + bytes(7)
    return header + offsets + counts + directories


def jpeg_padded(*, segments: int = 0, stray: int = 0) -> bytes:
    """A valid 8 x 8 JPEG with `segments` empty APP5 segments and then `stray` junk bytes
    after its first segment (JFIF's): Pillow walks both in Python."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (8, 8), 255).save(out, "JPEG")
    data = out.getvalue()
    first = 4 + struct.unpack(">H", data[4:6])[0]  # the start, then JFIF's APP0
    return data[:first] + b"\xff\xe5\x00\x02" * segments + b"\x01" * stray + data[first:]


def png_chunks(count: int, *, kind: bytes = b"prIv", size: int = 0) -> bytes:
    """A valid 8 x 8 PNG with `count` chunks of `kind` (private: Pillow keeps those), each
    of `size` zero bytes, before its image data."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (8, 8), 255).save(out, "PNG")
    data = out.getvalue()
    body = bytes(size)
    extra = struct.pack(">I", size) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    at = data.index(b"IDAT") - 4
    return data[:at] + extra * count + data[at:]


def gif_comment(size: int) -> bytes:
    """A valid 8 x 8 GIF with a comment of `size` bytes before its image (Pillow keeps it)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("P", (8, 8)).save(out, "GIF")
    data = out.getvalue()
    table = 3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0
    at = 13 + table
    blocks = b"".join(
        bytes([len(part)]) + part
        for part in (b"c" * min(255, size - start) for start in range(0, size, 255))
    )
    return data[:at] + b"!\xfe" + blocks + b"\x00" + data[at:]


def bmp_header_claim(declared: int, padding: int) -> bytes:
    """A 10 x 10 BMP declaring a `declared`-byte information header, `padding` bytes long."""
    header = b"BM" + struct.pack("<IHHI", 14 + padding, 0, 0, 14 + padding)
    return header + struct.pack("<Iii", declared, 10, 10) + bytes(padding - 8)


def text_bomb(chars: int, *, pages: int = 1, per_line: int = 1000) -> bytes:
    """`pages` pages drawing one Flate-compressed content stream of `chars` characters of
    text (Helvetica at 1 pt): a few KiB of PDF, `chars` characters of text layer per page."""
    line = b"(" + b"A" * per_line + b") Tj 0 1 Td "
    content = zlib.compress(b"BT /F1 1 Tf 0 0 Td " + line * (chars // per_line) + b"ET", 9)
    kids = b" ".join(b"%d 0 R" % (5 + n) for n in range(pages))
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            stream(content, b"/Filter /FlateDecode"),
            *(
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
                for _ in range(pages)
            ),
        ]
    )


def png_late_header(width: int, height: int) -> bytes:
    """A PNG whose first chunk is not its IHDR: read from its first bytes, it is 1 x 1 (the
    other chunk's first eight bytes); Pillow reads chunks in any order up to the image
    data, and takes its size from the IHDR after it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"teXt", struct.pack(">II", 1, 1))
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * (1 + (width + 7) // 8)))
        + chunk(b"IEND", b"")
    )


def gif_large_frame(width: int, height: int) -> bytes:
    """A GIF of a 1 x 1 screen whose first frame is `width` x `height`: Pillow enlarges the
    image to hold the frame."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0)
        + b"\0\0\0\xff\xff\xff"  # a two-colour table
        + b","
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02\x02\x4c\x01\x00;"
    )


def jpeg_late_frame(width: int, height: int) -> bytes:
    """A JPEG whose frame header (its size) follows 128 KiB of metadata segments, past the
    first bytes sniffed; its size is set to `width` x `height`."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (8, 8)).save(out, "JPEG")
    data = out.getvalue()
    metadata = (b"\xff\xe5" + struct.pack(">H", 65000) + b"m" * 64998) * 2
    frame = data.index(b"\xff\xc0")
    return (
        data[:2]
        + metadata
        + data[2 : frame + 5]
        + struct.pack(">HH", height, width)
        + data[frame + 9 :]
    )


def webp_frames(count: int, side: int = 100) -> bytes:
    """An animated WebP of a `side`-square canvas and `count` frames of one pixel each
    (46 bytes a frame): libwebp lists every frame when it opens the file."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGBA", (1, 1)).save(out, "WEBP", lossless=True)
    pixel = out.getvalue()[12:]  # the VP8L chunk

    def chunk(kind: bytes, body: bytes) -> bytes:
        return kind + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)

    canvas = (side - 1).to_bytes(3, "little") * 2
    # Offset (3 + 3 bytes), frame size less one (3 + 3), duration (3), flags (1).
    frame = chunk(b"ANMF", bytes(12) + b"\x01\0\0\0" + pixel)
    body = (
        b"WEBP"
        + chunk(b"VP8X", b"\x12\0\0\0" + canvas)  # animated, with alpha
        + chunk(b"ANIM", bytes(6))
        + frame * count
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body
