"""Receipt conventions the layout rules rely on, one test per cause of past errors on the
tuning receipts (synthetic OCR text: the lines as OCR gives them)."""

from __future__ import annotations

from services.extract.offline.layout import by_layout
from services.extract.offline.ocrfix import fix_words
from services.extract.schema import Field

TOTAL = Field("total", "currency")
ADDRESS = Field("address", "address")
COMPANY = Field("company", "text")


def read(lines: list[str], field: Field) -> object:
    return by_layout("\n".join(lines), field)


def test_an_amount_printed_before_the_total_label_is_not_its_value() -> None:
    # A tax table's header names a `Total(RM)` column; OCR's `%1S9` before it is no amount.
    lines = [
        "Total RM 7,838.80",
        "Change 1.20",
        "%1S9 Amt(RM) GST(RM) Total(RM)",
        "SR 6 7,395.09 443.71 7,838.80",
    ]
    assert read(lines, TOTAL) == "7838.80"


def test_a_later_zero_total_totals_something_else() -> None:
    lines = ["TOTAL 19.99", "CASH 20.00", "CHANGE 0.00", "TOTAL LOADING CHARGES 0.00"]
    assert read(lines, TOTAL) == "19.99"


def test_loyalty_points_are_no_total() -> None:
    lines = ["TOTAL 12.50", "CASH 20.00", "Description Total Points", "Opening Balance 2264"]
    assert read(lines, TOTAL) == "12.50"


def test_without_a_total_line_the_last_subtotal_after_rounding_is_paid() -> None:
    lines = [
        "SUBTOTAL (QTY 4) RM41.43",
        "ROUNDING RM0.02",
        "SUBTOTAL (QTY 4) RM41.45",
        "CASH RM51.50",
        "GST SUMMARY",
        "Rate Net(RM) GST(RM) Total(RM)",
        "S6.00% 39.09 2.34 41.43",
    ]
    assert read(lines, TOTAL) == "41.45"


def test_a_subtotal_before_an_added_tax_is_not_the_total() -> None:
    # The total line is there but unreadable (`TOT*1,`): better none than the subtotal.
    lines = ["Sub Total RM 68.87", "GST/TAX 6% RM 4.13", "TOT*1, RM 73.00", "CASH RM 73.00"]
    assert read(lines, TOTAL) is None


def test_a_total_label_clipped_by_ocr() -> None:
    assert read(["Totl 8 270.00", "Cash 300.00"], TOTAL) == "270.00"


def test_a_dot_after_the_currency_is_no_decimal_point() -> None:
    assert read(["Total Incl. GST@6% <RM.34.80", "RM 100.00", "CASH"], TOTAL) == "34.80"
    assert read(["Grand Total Rs.1,250.00"], TOTAL) == "1250.00"


def test_a_long_digit_run_or_an_international_phone_ends_the_address() -> None:
    lines = ["ACME SDN BHD", "3RD FLR, JLN JEJAKA", "55100 KUALA LUMPUR", "GSI 10 : 002017394688"]
    assert read(lines, ADDRESS) == "3RD FLR, JLN JEJAKA 55100 KUALA LUMPUR"
    lines = ["ACME SDN BHD", "Lot S25, Jln Desa", "81100 Johor Bahru, Johor", "+607-357.1177"]
    assert read(lines, ADDRESS) == "Lot S25, Jln Desa 81100 Johor Bahru, Johor"


def test_an_item_line_is_no_address() -> None:
    lines = ["ACME STORES SDN BHD", "GST Reg No. 000947339264", "USJ Summit, Subang (SS)"]
    lines += ["22241 WS CUT SCISSORS 18.00 S", "95448 BASKET 0.00Z"]
    assert read(lines, ADDRESS) == "USJ Summit, Subang (SS)"


def test_a_street_or_building_line_without_a_number_starts_the_address() -> None:
    lines = ["ACME SDN BHD", "(1219716-T)", "PARADIGM MALL", "LOT NO.: 4F-27, 4TH FLOOR"]
    assert read(lines, ADDRESS) == "PARADIGM MALL LOT NO.: 4F-27, 4TH FLOOR"
    # A brand line without one is still skipped.
    lines = ["DOMINO'S PIZZA SDN BHD", "PERMAS JAYA", "No.12, Jalan Permas 10", "81750 MASAI"]
    assert read(lines, ADDRESS) == "No.12, Jalan Permas 10 81750 MASAI"


def test_an_address_label_glued_by_ocr_starts_the_address() -> None:
    lines = [
        "EDEN SDN BHD",
        "(894996-D)",
        "LotNO:20,Level UG1,Publika",
        "No1,Jalan Dutamas,50480 KL",
    ]
    assert read(lines, ADDRESS) == "LotNO:20,Level UG1,Publika No1,Jalan Dutamas,50480 KL"


def test_a_licensee_line_as_ocr_reads_it_is_no_address() -> None:
    lines = ["ALAF RESTAURANTS SDN BHD", "License2 of McDonald's", "Level 6, Bangunan TH"]
    lines += ["47400 Petaling Jaya"]
    assert read(lines, ADDRESS) == "Level 6, Bangunan TH 47400 Petaling Jaya"


def test_a_one_closing_a_label_word_before_its_number_is_an_l() -> None:
    assert fix_words("Leve1 6,Bangunan TH") == "Level 6,Bangunan TH"
    # A street's or a house's number stays: glued to a name, a short word or capitals.
    assert fix_words("Jalan Raya1, No1 Jalan, PJU1 5") == "Jalan Raya1, No1 Jalan, PJU1 5"


def test_without_a_total_label_the_cash_less_the_change_was_paid() -> None:
    lines = ["TOTALEXCL.GST 28.11", "ADD:GST@6% 1.69", "29.80", "CASH 50.00", "CHANGE 20.20"]
    assert read(lines, TOTAL) == "29.80"


def test_a_total_that_lost_its_decimal_point_is_read_from_cash_and_change() -> None:
    lines = ["SUB-TOTAL(GST) 7.00", "TOTAL 700", "CASH 50.00", "CHANGE 43.00"]
    assert read(lines, TOTAL) == "7.00"
    # A whole total that cash and change agree with stays as printed.
    assert read(["TOTAL 700", "CASH 1000", "CHANGE 300"], TOTAL) == "700"


def test_a_postcode_with_look_alike_letters_is_read_as_digits() -> None:
    lines = ["ACME SDN BHD", "NO.17-G, JALAN SETIA", "SEKSYEN U13.4D170 SHAH ALAM", "TEL:03-3362"]
    assert read(lines, ADDRESS) == "NO.17-G, JALAN SETIA SEKSYEN U13.40170 SHAH ALAM"
    lines = ["ACME SDN BHD", "125A JALAN MALINJA", "SITEB454OOSEKINCHAN"]
    assert read(lines, ADDRESS) == "125A JALAN MALINJA SITEB45400SEKINCHAN"
    # Fewer than three digits: a word, not a postcode.
    lines = ["ACME SDN BHD", "NO 12, JALAN 1DSIB", "47400 PJ"]
    assert read(lines, ADDRESS) == "NO 12, JALAN 1DSIB 47400 PJ"


def test_the_name_is_above_the_address_not_a_heading_under_it() -> None:
    lines = ["BHPetrol Permas Jaya 2", "LOT PTD 101051", "Jalan Permas 10/10"]
    lines += ["81750 Masai, Johor", "PREPAY CHIT NUMBER", "57381"]
    assert read(lines, COMPANY) == "BHPetrol Permas Jaya 2"
    assert read(lines, ADDRESS) == "LOT PTD 101051 Jalan Permas 10/10 81750 Masai, Johor"


def test_a_name_after_the_postcode_town_and_state_is_a_branch() -> None:
    lines = ["POPULAR BOOK CO. (M) SDN BHD", "(Co.No.113825-W)", "No 8, Jalan 7/118B"]
    lines += ["56000 Kuala Lumpur,Malaysia", "AEON SHAH ALAM", "Tel:03-55235214"]
    assert read(lines, ADDRESS) == "No 8, Jalan 7/118B 56000 Kuala Lumpur,Malaysia"
    # Without the state, the next line may carry it.
    lines = ["ACME SDN BHD", "No.3, Jalan SS21/39,47400 Petaling Jaya", "Selangor", "(GST ID)"]
    assert read(lines, ADDRESS) == "No.3, Jalan SS21/39,47400 Petaling Jaya Selangor"


def test_a_stronger_labels_zero_still_stands() -> None:
    assert read(["Total 100.00", "Paid 100.00", "Balance due 0.00"], TOTAL) == "0.00"


def test_an_address_word_misread_by_one_letter_is_spelled_right() -> None:
    # OCR changes, drops or adds a letter of a state's, a town's or a street word's name.
    lines = ["ACME SDN BHD", "No 8, Jalan Mawar, Desa Permai", "56000 Kuala Lunpur, SELAMGOR"]
    assert read(lines, ADDRESS) == "No 8, Jalan Mawar, Desa Permai 56000 Kuala Lumpur, SELANGOR"
    lines = ["ACME SDN BHD", "12,Jalan Kilang 7/4,KawasanPerindustian Maju,81200 Johor"]
    assert read(lines, ADDRESS) == "12,Jalan Kilang 7/4,KawasanPerindustrian Maju,81200 Johor"
    # Look-alikes in a short word: `Jaian` starts the address as `Jalan` does; `Ma11`.
    lines = ["ACME SDN BHD", "Jaian Lapangan Terbang", "LOT 3, AEON Ma11 KLANG", "41150 Klang"]
    assert read(lines, ADDRESS) == "Jalan Lapangan Terbang LOT 3, AEON Mall KLANG 41150 Klang"
    # Other words stay as printed: one letter from two stock words, or too short to tell.
    lines = ["ACME SDN BHD", "Lot 5, Jalan Karang, Taman Aman", "47300 Kota Damai"]
    assert read(lines, ADDRESS) == "Lot 5, Jalan Karang, Taman Aman 47300 Kota Damai"


def test_a_line_after_the_state_is_no_address() -> None:
    # The state closes the address on a line of its own too; a station's name follows.
    lines = ["BHPetrol Airport", "Jalan Lapangan Terbang", "47200 Subang", "Selangor"]
    lines += ["D'Rosh Servport", "CO. REG. NO: 000948487-V"]
    assert read(lines, ADDRESS) == "Jalan Lapangan Terbang 47200 Subang Selangor"
    # `SELANGOR DARUL` / `EHSAN`, and a state followed by a comma, go on.
    lines = ["ACME SDN BHD", "NO. 5, JALAN BESAR", "45600 BATANG SELANGOR DARUL", "EHSAN"]
    assert read(lines, ADDRESS) == "NO. 5, JALAN BESAR 45600 BATANG SELANGOR DARUL EHSAN"


def test_a_code_without_words_does_not_start_the_address() -> None:
    lines = ["AIK HUAT ENTERPRISE", "ALAM SDN HHD", "X-122228", "NO. 17-G, JALAN SETIA"]
    lines += ["40170 SHAH ALAM"]
    assert read(lines, ADDRESS) == "NO. 17-G, JALAN SETIA 40170 SHAH ALAM"


def test_the_country_after_the_state_is_part_of_the_address() -> None:
    lines = ["ACME SDN BHD", "No 8, Jalan Besar", "47200 Subang, Selangor", "MALAYSIA."]
    lines += ["AEON SUBANG"]
    assert read(lines, ADDRESS) == "No 8, Jalan Besar 47200 Subang, Selangor MALAYSIA."
