"""An XLSX workbook of one sheet, written as a stream of bytes while rows arrive.

openpyxl's write-only mode keeps every distinct string in the shared-string table (in memory,
100,000 rows of file paths and values) and hands out nothing until `save()` zips the whole
workbook, so a big export starts only after all of it was built. Here the package is zipped
on the fly (`zipfile` on an unseekable sink writes data descriptors), the sheet XML is
deflated as rows are appended, and strings are inline (`t="inlineStr"`): memory is one page
of rows, and the first bytes leave with the first page.

Cells are typed by the value, never by its text: a string is always a string (an inline
string cannot be a formula, so `=HYPERLINK(...)` from a document stays text), a Decimal is a
number shown with two decimals (money), a SheetDate a date shown in its field's order,
int/float numbers, bool booleans, None an empty cell.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

# XML 1.0 forbids these characters even escaped; a document's text may hold them.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_MONEY_STYLE = 1  # cellXfs index of the 0.00 number format (styles.xml below)
# cellXfs indexes of the date formats, by the order a date field writes its dates in.
DATE_STYLES = {"%Y-%m-%d": 2, "%d/%m/%Y": 3, "%m/%d/%Y": 4}
# Day 0 of Excel's serial dates (1900 date system, past its 1900 leap-year error).
_EPOCH = dt.date(1899, 12, 30)
_FIRST_SERIAL_DAY = dt.date(1900, 3, 1)
# Excel's limit per cell; longer text is cut rather than producing a file Excel repairs.
MAX_CELL_CHARS = 32_767

_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_SML = "application/vnd.openxmlformats-officedocument.spreadsheetml."
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
_RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CONTENT_TYPES = (
    _XML + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_SML}sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_SML}worksheet+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_SML}styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    _XML + f'<Relationships xmlns="{_RELS_NS}">'
    f'<Relationship Id="rId1" Type="{_REL}officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK_RELS = (
    _XML + f'<Relationships xmlns="{_RELS_NS}">'
    f'<Relationship Id="rId1" Type="{_REL}worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}styles" Target="styles.xml"/>'
    "</Relationships>"
)
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="4"><numFmt numFmtId="164" formatCode="0.00"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/>'
    '<numFmt numFmtId="166" formatCode="dd/mm/yyyy"/>'
    '<numFmt numFmtId="167" formatCode="mm/dd/yyyy"/></numFmts>'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="5"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="167" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
    "</cellStyles></styleSheet>"
)
_SHEET_START = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
_SHEET_END = "</sheetData></worksheet>"


def _workbook(sheet_name: str) -> str:
    name = escape(_ILLEGAL.sub("", sheet_name)[:31], {'"': "&quot;"})
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )


def column_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


class _Sink:
    """An unseekable file that keeps what was written until it is taken."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


@dataclass(frozen=True, slots=True)
class SheetDate:
    """A date field's value: its text as stored (what CSV and `str` give) and the day it
    names, a date cell in XLSX shown in `pattern`'s order (a DATE_STYLES key): dates as text
    could not be sorted or filtered as dates in a spreadsheet."""

    day: dt.date
    text: str
    pattern: str

    def __str__(self) -> str:
        return self.text


def _cell(ref: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, SheetDate):
        if value.day >= _FIRST_SERIAL_DAY and value.pattern in DATE_STYLES:
            serial = (value.day - _EPOCH).days
            return f'<c r="{ref}" s="{DATE_STYLES[value.pattern]}"><v>{serial}</v></c>'
        value = value.text
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, Decimal) and value.is_finite():
        return f'<c r="{ref}" s="{_MONEY_STYLE}"><v>{value}</v></c>'
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    text = escape(_ILLEGAL.sub("", str(value))[:MAX_CELL_CHARS])
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


class XlsxStream:
    """`append` rows, `take` the bytes produced so far, `close` for the last of them."""

    def __init__(self, sheet_name: str = "Sheet1") -> None:
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, "w", compression=zipfile.ZIP_DEFLATED)
        self._zip.writestr("[Content_Types].xml", _CONTENT_TYPES)
        self._zip.writestr("_rels/.rels", _ROOT_RELS)
        self._zip.writestr("xl/workbook.xml", _workbook(sheet_name))
        self._zip.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        self._zip.writestr("xl/styles.xml", _STYLES)
        # force_zip64: the sheet's size is unknown until the end and may pass 4 GiB.
        self._sheet = self._zip.open("xl/worksheets/sheet1.xml", "w", force_zip64=True)
        self._sheet.write(_SHEET_START.encode())
        self._rows = 0
        self._columns: list[str] = []
        self._closed = False

    def append(self, values: Sequence[Any]) -> None:
        self._rows += 1
        while len(self._columns) < len(values):
            self._columns.append(column_letters(len(self._columns)))
        cells = "".join(_cell(f"{self._columns[i]}{self._rows}", v) for i, v in enumerate(values))
        self._sheet.write(f'<row r="{self._rows}">{cells}</row>'.encode())

    def take(self) -> bytes:
        """What the zip has emitted so far (deflate holds back a little until it flushes)."""
        return self._sink.take()

    def close(self) -> bytes:
        self._sheet.write(_SHEET_END.encode())
        self._finish()
        return self._sink.take()

    def discard(self) -> None:
        """Lets the workbook go unfinished (nothing more is taken); once closed, a no-op."""
        if not self._closed:
            self._finish()
            self._sink.take()

    def _finish(self) -> None:
        self._sheet.close()
        self._zip.close()
        self._closed = True
