"""A page that failed to load offers to try again: once the server was back, the error
stayed and only a reload left it (the web trial, the gateway stopped and restarted)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Route, expect

pytestmark = pytest.mark.e2e


def test_a_list_that_failed_to_load_is_read_again_on_a_click(page: Page, app_url: str) -> None:
    down = True

    def jobs(route: Route) -> None:
        if down:
            route.abort("connectionrefused")
        else:
            route.continue_()

    page.route(re.compile(r".*/v1/jobs(\?.*)?$"), jobs)
    page.goto(f"{app_url}/app/")
    expect(page.get_by_role("alert")).to_contain_text("could not be reached")
    down = False
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    # The list, or its empty state (the app is shared by the session's tests).
    expect(page.locator("table.jobs, p.empty").first).to_be_visible()


def test_a_page_that_failed_to_load_is_drawn_again_on_a_click(page: Page, app_url: str) -> None:
    down = True

    def templates(route: Route) -> None:
        if down:
            route.abort("connectionrefused")
        else:
            route.continue_()

    page.route(re.compile(r".*/v1/templates(\?.*)?$"), templates)
    page.goto(f"{app_url}/app/templates")
    expect(page.get_by_role("heading", name="Something went wrong")).to_be_visible()
    down = False
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("heading", name="Templates", exact=True)).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
