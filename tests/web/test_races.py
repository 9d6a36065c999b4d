"""Loads that overlap: a late answer must never replace a newer view (or land in another page),
and a double-click must not do a thing twice. Each test holds one answer back at the network
level, the way a slow server or a busy network does."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from bytereview.core.settings import DEV_TOKEN

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}
HELD_MS = 1500


def hold_first(page: Page) -> Callable[[Route], None]:
    """A route handler answering its first request late (after the requests that follow it)."""
    held: list[str] = []

    def late(route: Route) -> None:
        if not held:
            held.append(route.request.url)
            page.wait_for_timeout(HELD_MS)
        route.continue_()

    return late


# "": the job's address sends a job on to its step once the job is read; late, it took the
# user away from the page they had gone to. "/results": the results page draws once its job is
# read; late, it drew over the page the user had gone to.
@pytest.mark.parametrize("step", ["", "/results"])
def test_a_page_left_before_its_answer_neither_draws_nor_redirects(
    page: Page, app_url: str, step: str
) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        declared = {"displayName": "Left behind", "files": [{"path": "p.pdf", "sizeBytes": 1}]}
        job = api.post("/v1/jobs", json=declared).json()["job"]["name"]
    page.route(re.compile(rf"/v1/{job}$"), hold_first(page))
    page.goto(f"{app_url}/app/{job}{step}")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
    templates = page.get_by_role("heading", name="Templates", level=1)
    expect(templates).to_be_visible()
    page.wait_for_timeout(HELD_MS + 1000)  # the job's answer has come and gone
    expect(page).to_have_url(f"{app_url}/app/templates")
    expect(templates).to_be_visible(timeout=1)
    expect(page.get_by_role("heading", name=re.compile("Left behind"))).to_have_count(0)
