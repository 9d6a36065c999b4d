"""The job page's live updates start from the state the watch stream opens with."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.jobs import ready_job

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}
# The page lists this many events at first (pages/job.js, loadEvents).
LISTED = 200


def test_a_long_trail_page_follows_the_job_and_lists_no_snapshot(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = ready_job(api, "Long trail")
        fields = {"fields": [{"name": "total", "dataType": "currency"}]}
        # More events than the page lists: it cannot know the newest one, so its watch starts
        # from now, and the stream's first message (the job's state, numbered after the
        # newest event) is new to it.
        for _ in range(LISTED):
            assert api.post(f"/v1/{job}:configure", json=fields).status_code == 200
        listed = api.get(f"/v1/{job}/events", params={"pageSize": LISTED}).json()
        assert listed.get("nextPageToken")
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{app_url}/app/{job}/results")
        expect(page.get_by_text("Updating live.")).to_be_visible()
        assert api.post(f"/v1/{job}:start", json={}).status_code == 200
    expect(page.get_by_text("Completed", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Edit total of invoices/a.pdf")).to_have_text("12.00")
    # It got there on the event stream, without polling.
    assert not [u for u in requested if u.endswith("/progress")], requested
    page.get_by_text("Events", exact=True).click()
    # The run's events were added as they happened; the state the stream opened with is no
    # event of the job's, so it is not among them.
    expect(page.get_by_text("job.status READY → QUEUED")).to_be_visible()
    expect(page.get_by_text("job.snapshot")).to_have_count(0)


def test_a_lost_stream_is_said_and_comes_back_live(page: Page, app_url: str) -> None:
    """It said "Updating live." while the gateway was down, and once three reconnects had
    failed it polled for as long as the page stayed open (the web trial, a restart)."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = ready_job(api, "Stream lost")
        fields = {"fields": [{"name": "total", "dataType": "currency"}]}
        assert api.post(f"/v1/{job}:configure", json=fields).status_code == 200
    down = {"watch": True, "progress": False}

    def watch(route: Route) -> None:
        if down["watch"]:
            route.abort("connectionrefused")
        else:
            route.continue_()

    def progress(route: Route) -> None:
        if down["progress"]:
            route.abort("connectionrefused")
        else:
            route.continue_()

    page.route(re.compile(rf"/v1/{job}:watch"), watch)
    page.route(re.compile(rf"/v1/{job}/progress"), progress)
    page.goto(f"{app_url}/app/{job}/results")
    expect(page.get_by_text("Connection lost; reconnecting…")).to_be_visible()
    # Past the reconnects (1 s and 2 s apart): polled, then the polls fail too.
    expect(page.get_by_text("Live updates unavailable; checking every few seconds.")).to_be_visible(
        timeout=20_000
    )
    down["progress"] = True
    expect(
        page.get_by_text("The server cannot be reached; trying again every few seconds.")
    ).to_be_visible(timeout=20_000)
    down.update(watch=False, progress=False)
    # The stream is tried again after five polls (web/api/watch.js): live once more.
    expect(page.get_by_text("Updating live.")).to_be_visible(timeout=30_000)
