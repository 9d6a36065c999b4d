"""Builds real and hostile ZIP archives for tests."""

from __future__ import annotations

import io
import struct
import zipfile

from tests.pdfs import text_pdf

# A valid 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def zip_bytes(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            if name.endswith("/"):
                archive.writestr(zipfile.ZipInfo(name), b"")
            else:
                archive.writestr(name, data)
    return buffer.getvalue()


def invoice(number: str) -> bytes:
    return text_pdf([f"Invoice Number: {number}", "Total: 10.00"])


def with_entry_info(entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def symlink_zip() -> bytes:
    info = zipfile.ZipInfo("link")
    info.create_system = 3
    info.external_attr = 0o120777 << 16
    return with_entry_info([(info, b"/etc/passwd")])


def encrypted_zip() -> bytes:
    """One entry flagged as encrypted (general purpose bit 0), as ZipCrypto tools write it."""
    data = bytearray(zip_bytes({"secret.pdf": b"ciphertext, as far as anyone knows"}))
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    for offset in (local + 6, central + 8):
        flags = struct.unpack("<H", data[offset : offset + 2])[0] | 0x1
        data[offset : offset + 2] = struct.pack("<H", flags)
    return bytes(data)


def overlapping_zip() -> bytes:
    """Two central-directory entries pointing at the same local file (the overlap bomb)."""
    data = bytearray(zip_bytes({"a.pdf": invoice("1"), "b.pdf": invoice("2")}))
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    first = archive.infolist()[0].header_offset
    end = data.rfind(b"PK\x05\x06")
    cd_offset = struct.unpack("<I", data[end + 16 : end + 20])[0]
    # Walk to the second central directory record and point it at the first local header.
    name_len, extra_len, comment_len = struct.unpack("<HHH", data[cd_offset + 28 : cd_offset + 34])
    second = cd_offset + 46 + name_len + extra_len + comment_len
    data[second + 42 : second + 46] = struct.pack("<I", first)
    return bytes(data)


def bomb_zip(size: int) -> bytes:
    """One entry of `size` zero bytes: compresses about 1000:1."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.pdf", "w", force_zip64=True) as entry,
    ):
        chunk = b"\0" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            entry.write(chunk)
    return buffer.getvalue()
