"""Sorting the results table: amounts by value and dates by day (they were sorted as text),
and the page says the order is this page's only."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.jobs import finished_zip_job, set_values

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}
TOTALS = [1007.5, 10.6, 109.7, -1.73, 9, 118.35]
# Day first: sorted as text, 31/01 came after 12/12 of the year before and 01/02.
PAID = ["31/01/2018", "12/12/2017", "01/02/2018", "05/01/2018", "", "28/02/2017"]


def column(page: Page, index: int) -> list[str]:
    """The texts of a column's value buttons, top to bottom (index 0: the first field)."""
    cells = page.locator(f"table.results tbody tr td:nth-of-type({index + 1}) button.value")
    return cells.all_inner_texts()


def test_amounts_sort_by_value_and_dates_by_day(page: Page, app_url: str) -> None:
    fields = [{"name": "total", "dataType": "currency"}, {"name": "paid", "dataType": "date_dmy"}]
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_zip_job(api, "Sorted by value", len(TOTALS), fields)
        set_values(
            api,
            job,
            {
                f"batch.zip/batch/{i:03d}.pdf": {"total": total, "paid": paid or None}
                for i, (total, paid) in enumerate(zip(TOTALS, PAID, strict=True))
            },
        )
    page.goto(f"{app_url}/app/{job}/results")
    expect(page.locator("table.results tbody tr")).to_have_count(len(TOTALS))
    expect(page.get_by_text("on this page only")).to_have_count(0)

    page.get_by_role("button", name="total", exact=True).click()
    header = page.get_by_role("columnheader", name="total")
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(page.get_by_text("Sorted by total, ascending, on this page only.")).to_be_visible()
    assert column(page, 0) == ["-1.73", "9.00", "10.60", "109.70", "118.35", "1007.50"]

    page.get_by_role("button", name="total", exact=True).click()
    expect(header).to_have_attribute("aria-sort", "descending")
    assert column(page, 0) == ["1007.50", "118.35", "109.70", "10.60", "9.00", "-1.73"]

    # Dates by the day they are, the empty one last.
    page.get_by_role("button", name="paid", exact=True).click()
    expect(page.get_by_role("columnheader", name="paid")).to_have_attribute(
        "aria-sort", "ascending"
    )
    assert column(page, 1) == [
        "28/02/2017",
        "12/12/2017",
        "05/01/2018",
        "31/01/2018",
        "01/02/2018",
        "—",
    ]
