"""The review walk as browser tests open it."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect


def open_walk(page: Page, values: int) -> Locator:
    """Opens the walk from the job page shown, once it says it holds `values` values."""
    page.get_by_role("button", name="Review values").click()
    walk = page.get_by_role("region", name="Review")
    expect(walk.get_by_text(f"Value 1 of {values}")).to_be_visible()
    return walk
