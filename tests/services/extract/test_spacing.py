"""Word spaces put back from a line's ink (services/extract/reading/spacing.py): on line crops
drawn with known gaps, where each character's columns are known as CTC would place them;
and on a whole image OCR'd, where the recognizer itself reads no space."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from services.extract.reading.ocr import ocr_engine
from services.extract.reading.pages import ocr_page
from services.extract.reading.spacing import char_columns, ink_columns, word_spaces

SIZE = 24


def line(
    words: list[str], gap: float, *, cell: float | None = None
) -> tuple[str, list[tuple[int, int]], Any]:
    """A line crop of `words` `gap` px apart, drawn glyph by glyph: proportionally with the
    font's own advances, or monospaced in cells `cell` px wide (each glyph centred in its
    cell, as receipt printers set them). Returns the text as the recognizer would read it
    (no spaces), each character's columns (one column per pixel, CTC's spike at the
    glyph's middle) and the crop as a grey array, cut to the ink's rows and a margin of a
    sixth of their height above and below (as detection boxes a receipt's line)."""
    font = ImageFont.load_default(size=SIZE)
    image = Image.new("L", (2000, 3 * SIZE), 255)
    draw = ImageDraw.Draw(image)
    x, text, columns = 8.0, "", []
    for k, word in enumerate(words):
        if k:
            x += gap
        for ch in word:
            advance = font.getlength(ch)
            left = x + (cell - advance) / 2 if cell else x
            draw.text((left, SIZE), ch, fill=0, font=font)
            middle = int(left + advance / 2)
            text += ch
            columns.append((middle, middle))
            x += cell or advance
    pixels = np.asarray(image)
    rows = np.flatnonzero((pixels < 128).any(axis=1))
    margin = (rows[-1] - rows[0]) // 6
    crop = pixels[rows[0] - margin : rows[-1] + margin + 1, : int(x) + 8]
    return text, columns, crop


def spaced_line(words: list[str], gap: float, *, cell: float | None = None) -> str:
    text, columns, crop = line(words, gap, cell=cell)
    return word_spaces(text, columns, ink_columns(crop), 1.0, crop.shape[0])


def test_words_set_apart_get_their_spaces() -> None:
    # Proportional print: a space of this font (5 px at 24 px) and a wide gap both part words.
    space = ImageFont.load_default(size=SIZE).getlength(" ")
    words = ["UNIHAKKA", "INTERNATIONAL", "SDN", "BHD"]
    assert spaced_line(words, space) == "UNIHAKKA INTERNATIONAL SDN BHD"
    assert spaced_line(words, 3 * space) == "UNIHAKKA INTERNATIONAL SDN BHD"


def test_a_word_set_tight_is_not_split() -> None:
    assert spaced_line(["UNIHAKKAINTERNATIONAL"], 0) == "UNIHAKKAINTERNATIONAL"
    assert spaced_line(["Restaurants"], 0) == "Restaurants"
    # Words barely apart (a pixel or two) are read as one, as the ink shows them.
    assert spaced_line(["SDN", "BHD"], 1) == "SDNBHD"


def test_monospaced_print_parts_a_missing_cell_not_a_narrow_glyph() -> None:
    # In a monospaced line the dots of `D.I.Y.` leave as much blank beside them as a space
    # does between proportional words; a space there is a whole empty cell.
    cell = 15.0
    assert spaced_line(["MR.D.I.Y.", "SDN"], cell, cell=cell) == "MR.D.I.Y. SDN"
    assert spaced_line(["SDN", "BHD"], cell, cell=cell) == "SDN BHD"
    assert spaced_line(["KEDAI", "PAPAN", "YEW"], cell, cell=cell) == "KEDAI PAPAN YEW"


def test_numbers_and_closing_punctuation_stay_as_read() -> None:
    cell = 15.0
    # A narrow `1` leaves a wide blank in its cell; a number is read whole all the same.
    assert spaced_line(["TOTAL", "17.00"], cell, cell=cell) == "TOTAL 17.00"
    assert spaced_line(["11/01/2019", "TEL"], cell, cell=cell) == "11/01/2019 TEL"
    # Even a whole cell before a comma or after a parenthesis is no space of the text's.
    assert spaced_line(["LOT", "1,", "JALAN"], cell, cell=cell) == "LOT 1, JALAN"
    assert spaced_line(["KEDAI", "(M", ")", "SDN"], cell, cell=cell) == "KEDAI (M) SDN"


def test_spaces_the_recognizer_read_are_kept() -> None:
    text, columns, crop = line(["SDN", "BHD"], 14.0)
    read = "SDN BHD"
    middle = (columns[2][1] + columns[3][0]) // 2
    with_space = [*columns[:3], (middle, middle), *columns[3:]]
    height = crop.shape[0]
    assert word_spaces(read, with_space, ink_columns(crop), 1.0, height) == "SDN BHD"
    # Columns that do not match the text one to one leave it as it is.
    assert word_spaces(text, columns[:-1], ink_columns(crop), 1.0, height) == text


def test_char_columns_are_ctc_runs_without_blanks() -> None:
    # Class 0 is CTC's blank; a repeated class is one character, unless a blank parts it.
    indices = [0, 5, 5, 0, 0, 7, 0, 7, 7, 0, 3]
    assert char_columns(indices) == [(1, 2), (5, 5), (7, 8), (10, 10)]
    assert char_columns([]) == []


def test_ink_columns_read_light_text_on_a_dark_band() -> None:
    _text, _, crop = line(["AB", "CD"], 20.0)
    light = ink_columns(crop)
    dark = ink_columns(255 - crop)
    assert light.any()
    assert not light.all()
    assert (light == dark).all()


def test_a_tight_line_ocrs_with_its_spaces() -> None:
    # Receipts set company names this tight: rapidocr's recognizer reads the line below as
    # one word (asserted, so the test keeps proving what it claims).
    font = ImageFont.load_default(size=18)
    image = Image.new("RGB", (420, 60), "white")
    ImageDraw.Draw(image).text((20, 20), "UNIHAKKA INTERNATIONAL SDN BHD", fill="black", font=font)
    theirs, _ = ocr_engine()(image)
    assert [t for _, t, _ in theirs] == ["UNIHAKKAINTERNATIONALSDNBHD"]
    page = ocr_page(image)
    assert page.text == "UNIHAKKA INTERNATIONAL SDN BHD"
    # Each space read back sits in its text run's box, as the characters around it do.
    assert len(page.boxes) == len(page.text)
    assert len(set(page.boxes)) == 1
    assert page.boxes[0] is not None
