"""Builds small, valid PDFs with a real text layer, for tests (no PDF library needed)."""

from __future__ import annotations


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def text_pdf(lines: list[str], *, pages: int = 1) -> bytes:
    """A PDF of `pages` pages, each showing `lines` in Helvetica, top to bottom."""
    content = (
        "BT /F1 12 Tf 14 TL 72 740 Td "
        + " ".join(f"({_escape(line)}) Tj T*" for line in lines)
        + " ET"
    )
    return _pdf(content, pages)


def placed_pdf(runs: list[tuple[float, float, str]], *, size: float = 12) -> bytes:
    """A one-page PDF drawing each (x, y, text) where it says, in `size`-point type, in the
    order given: the text layer's order, which a form's producer may choose apart from where
    things appear."""
    content = " ".join(f"BT /F1 {size} Tf {x} {y} Td ({_escape(t)}) Tj ET" for x, y, t in runs)
    return _pdf(content, 1)


def _pdf(content: str, pages: int) -> bytes:
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(pages)]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    # WinAnsi (cp1252) so that a text layer can hold €, accents and the like.
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    for i in range(pages):
        stream = content.encode("cp1252")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_ids[i] + 1} 0 R >>".encode()
        )
        objects.append(
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def joined_pdf(*documents: bytes) -> bytes:
    """The documents' pages one after another in one PDF (e.g. text pages and a scan)."""
    import io

    import pypdfium2 as pdfium

    joined = pdfium.PdfDocument.new()
    for document in documents:
        joined.import_pages(pdfium.PdfDocument(document))
    out = io.BytesIO()
    joined.save(out)
    return out.getvalue()
