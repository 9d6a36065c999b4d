"""Work a user never sees: leaving a page stops its polls and loads and lets go of what it
holds, and starting a poll again does not add a second one. Each test counts what the browser
asks the server (Playwright's `request` event) or the object URLs it keeps, after the user has
gone, with one answer held back at the network level where the leak comes from a late one."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Error, Page, Request, Route, expect

from bytereview.core.settings import DEV_TOKEN
from tests.web.jobs import ready_job, wait_for
from tests.web.test_flow import paused_job
from tests.web.test_trust import FIELDS, A, finished_job

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}
HELD_MS = 1500

# Every object URL made and not yet revoked, kept by the page itself from its first script on.
COUNT_OBJECT_URLS = """
window.liveObjectUrls = new Set();
const make = URL.createObjectURL.bind(URL);
const revoke = URL.revokeObjectURL.bind(URL);
URL.createObjectURL = (object) => {
  const url = make(object);
  window.liveObjectUrls.add(url);
  return url;
};
URL.revokeObjectURL = (url) => {
  window.liveObjectUrls.delete(url);
  revoke(url);
};
"""


@pytest.fixture(scope="module")
def finished(app_url: str) -> str:
    """A finished job with two results and four values to review, which tests only read."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        return finished_job(api, "Leaving read")


@pytest.fixture(scope="module")
def ready(app_url: str) -> str:
    """A ready job of three files (a.pdf, more.zip, and b.pdf in it), never started."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        return ready_job(api, "Leaving configure")


def requests_to(page: Page, pattern: str, method: str = "GET") -> list[str]:
    """The URLs of the requests the page sends from now on to URLs matching `pattern`."""
    seen: list[str] = []

    def record(request: Request) -> None:
        if request.method == method and re.search(pattern, request.url):
            seen.append(request.url)

    page.on("request", record)
    return seen


def until(page: Page, done: Callable[[], bool], seconds: float = 15) -> None:
    """Lets the page run until `done()` (a count of requests kept in Python)."""
    for _ in range(int(seconds * 20)):
        if done():
            return
        page.wait_for_timeout(50)
    raise AssertionError("waited in vain")


def held_back(page: Page, pages_of_one: bool = False) -> Callable[[Route], None]:
    """A route handler that holds back its first answer (the request reaches the server at
    once). With `pages_of_one` every request asks for pages of one item: the real server then
    answers a small job in as many pages as it has items, the way it answers a job of
    thousands in pages of a thousand."""
    held: list[str] = []

    def late(route: Route) -> None:
        url = route.request.url
        if pages_of_one:
            url = re.sub(r"pageSize=\d+", "pageSize=1", url)
        if held:
            route.continue_(url=url)
            return
        held.append(url)
        answer = route.fetch(url=url)
        page.wait_for_timeout(HELD_MS)
        # The page may have given up on the request (aborted it): then there is no one to answer.
        with contextlib.suppress(Error):
            route.fulfill(response=answer)

    return late


def leave_for_templates(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
    expect(page.get_by_role("heading", name="Templates", level=1)).to_be_visible()


# The configure page's files panel and the analysis page's problems read a job's files page by
# page (a thousand a page); left, they went on reading every page of a big job.
@pytest.mark.parametrize("step", ["configure", "analysis"])
def test_a_page_left_reads_no_more_file_pages(
    page: Page, app_url: str, ready: str, step: str
) -> None:
    files = requests_to(page, rf"/v1/{ready}/files\?")
    counts = requests_to(page, r":planTasks", "POST")
    page.route(re.compile(rf"/v1/{ready}/files\?"), held_back(page, pages_of_one=True))
    page.goto(f"{app_url}/app/{ready}/{step}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(step.capitalize())
    until(page, lambda: len(files) > 0)
    leave_for_templates(page)
    read = len(files), len(counts)
    page.wait_for_timeout(HELD_MS + 1500)  # the first page's answer has come and gone
    assert (len(files), len(counts)) == read, files


def test_files_are_read_page_by_page_while_on_the_page(
    page: Page, app_url: str, ready: str
) -> None:
    """The other side: staying, the panel reads every page (three files, three pages)."""
    files = requests_to(page, rf"/v1/{ready}/files\?")
    page.route(re.compile(rf"/v1/{ready}/files\?"), held_back(page, pages_of_one=True))
    page.goto(f"{app_url}/app/{ready}/configure")
    expect(page.get_by_role("button", name="Preview invoices/more.zip/march/b.pdf")).to_be_visible()
    tree = page.get_by_role("region", name="Files and folders")
    expect(tree).to_have_attribute("aria-busy", "false")
    assert len(files) >= 3, files


def test_the_review_walk_left_reads_no_more_pages(page: Page, app_url: str, finished: str) -> None:
    reads = requests_to(page, r"/reviewItems\?")
    page.goto(f"{app_url}/app/{finished}/results")
    page.route(re.compile(r"/reviewItems\?"), held_back(page, pages_of_one=True))
    page.get_by_role("button", name="Review values").click()
    until(page, lambda: len(reads) > 0)
    leave_for_templates(page)
    read = len(reads)
    page.wait_for_timeout(HELD_MS + 1500)
    assert len(reads) == read, reads


@pytest.mark.parametrize("how", ["closed", "left"])
def test_a_page_image_that_comes_late_is_released(
    page: Page, app_url: str, finished: str, how: str
) -> None:
    """The source viewer shows a page from a blob: URL. Its image, answered after the viewer
    was closed or the page left, was kept (drawn in the hidden viewer) and never revoked."""
    page.add_init_script(COUNT_OBJECT_URLS)
    page.goto(f"{app_url}/app/{finished}/results")
    page.route(re.compile(r":renderPage"), held_back(page))
    page.get_by_role("button", name=f"Show the source of {A}").click()
    viewer = page.get_by_role("region", name=re.compile("^Source"))
    expect(viewer.get_by_text("Drawing the page…")).to_be_visible()
    if how == "closed":
        viewer.get_by_role("button", name="Close source").click()
        expect(viewer).to_be_hidden()
    else:
        leave_for_templates(page)
    page.wait_for_timeout(HELD_MS + 1000)
    assert page.evaluate("window.liveObjectUrls.size") == 0
    if how == "closed":
        # Shown again (answered at once now), the page's one image is held while on screen.
        page.get_by_role("button", name=f"Show the source of {A}").click()
        expect(viewer.get_by_role("img", name=f"Page 1 of {A}")).to_be_visible()
        assert page.evaluate("window.liveObjectUrls.size") == 1
        viewer.get_by_role("button", name="Close source").click()
        assert page.evaluate("window.liveObjectUrls.size") == 0


def test_a_job_run_again_after_the_page_was_left_is_not_watched(page: Page, app_url: str) -> None:
    """A re-run answered after the user left: the job runs again, and the page (no longer on
    screen) started a live watch that nothing would stop."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = finished_job(api, "Leaving rerun")
    watches = requests_to(page, rf"/v1/{job}:watch")
    page.goto(f"{app_url}/app/{job}/results")
    page.get_by_label(f"Select {A}").check()
    page.get_by_label("Even if unchanged").check()
    page.route(re.compile(r":rerun"), held_back(page))
    page.get_by_role("button", name="Re-run selected").click()
    leave_for_templates(page)
    page.wait_for_timeout(HELD_MS + 1500)
    assert watches == []
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        wait_for(api, job, {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED"})


def held_score(api: httpx.Client, version: str) -> str:
    """Scores `version` and pauses its scoring run, so the score stays RUNNING for as long as
    the test needs; returns the run's job. The offline extractor is fast, so the run may end
    before the pause lands: then it is scored again (the refusal is checked to be that)."""
    for _ in range(10):
        scored = api.post(f"/v1/{version}:score", json={})
        assert scored.status_code == 200, scored.text
        run: str = scored.json()["score"]["job"]
        paused = api.post(f"/v1/{run}:pause", json={})
        if paused.status_code == 200:
            return run
        wait_for(api, run, {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED"})
    raise AssertionError("every scoring run ended before it could be paused")


@pytest.fixture
def scoring(app_url: str) -> Iterator[str]:
    """A template of three versions whose first one is being scored (held), on two golden
    documents; the scoring run is cancelled at the end."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        created = api.post("/v1/templates", json={"displayName": "Polled", "fields": FIELDS[:2]})
        assert created.status_code == 200, created.text
        template: str = created.json()["name"]
        job = finished_job(api, "Polled golden", template)
        for result in api.get(f"/v1/{job}/results").json()["results"]:
            golden = {"result": result["name"]}
            assert api.post(f"/v1/{template}/goldenDocuments", json=golden).status_code == 200
        for fields in (FIELDS[:3], FIELDS):
            changed = api.patch(
                f"/v1/{template}",
                json={"name": template, "displayName": "Polled", "fields": fields},
            )
            assert changed.status_code == 200, changed.text
        run = held_score(api, f"{template}/versions/1")
        try:
            yield template
        finally:
            api.post(f"/v1/{run}:cancel", json={})


def test_template_scores_are_polled_once_and_not_after_leaving(
    page: Page, app_url: str, scoring: str
) -> None:
    """Each "Score" click, and each poll that saw a score running, started a 2-second poll of
    its own: three clicks, three polls; and a poll armed before the user left still asked."""
    polls = requests_to(page, rf"/v1/{scoring}/versions\?")
    page.goto(f"{app_url}/app/templates")
    versions = page.get_by_role("list", name="Versions of Polled")
    expect(versions).to_contain_text("Version 1: scoring…")
    for version in (2, 3):
        versions.get_by_role("button", name=f"Score version {version} of Polled").click()
        expect(versions).not_to_contain_text(f"Version {version}: not scored")
    asked = len(polls)
    page.wait_for_timeout(4500)
    # One poll every 2 s (version 1 is scoring all along): two in 4.5 s, three at most.
    assert 1 <= len(polls) - asked <= 3, polls[asked:]
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="Jobs", level=1)).to_be_visible()
    asked = len(polls)
    page.wait_for_timeout(2500)
    assert polls[asked:] == []


# Listeners for "abort" added to AbortSignals and not removed (a listener that ran once on an
# abort goes by itself; no signal of the page aborts while it is on screen here).
COUNT_ABORT_LISTENERS = """
window.abortListeners = 0;
const add = AbortSignal.prototype.addEventListener;
const remove = AbortSignal.prototype.removeEventListener;
AbortSignal.prototype.addEventListener = function (type, ...rest) {
  if (type === "abort") window.abortListeners += 1;
  return add.call(this, type, ...rest);
};
AbortSignal.prototype.removeEventListener = function (type, ...rest) {
  if (type === "abort") window.abortListeners -= 1;
  return remove.call(this, type, ...rest);
};
"""


def test_polling_progress_keeps_no_listener_per_poll(page: Page, app_url: str) -> None:
    """The live watch falls back to polling every 2 s when its stream fails; each wait left
    a listener on the watch's signal, one more every poll for as long as the page was open."""
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        job = paused_job(api, "Leaving polled")
    page.add_init_script(COUNT_ABORT_LISTENERS)
    page.route(re.compile(rf"/v1/{job}:watch"), lambda route: route.abort())
    polls = requests_to(page, rf"/v1/{job}/progress")
    page.goto(f"{app_url}/app/{job}/results")
    unavailable = page.get_by_text("Live updates unavailable; checking every few seconds.")
    expect(unavailable).to_be_visible()
    # Three polls (each poll's wait over before the next): as long as they take on a loaded
    # machine; a leak leaves one listener more after each.
    until(page, lambda: len(polls) >= 3)
    assert page.evaluate("window.abortListeners") <= 1
