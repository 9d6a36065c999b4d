"""A job whose tasks are held tells its user why, on the job page: the extract worker of a
whole `bytereview up` waits out the model's service (the Gemini stand-in) refusing the
platform's key, the page says so while the job stands still, and once the key is accepted
the job completes and the notice is gone."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from bytereview.core.settings import DEV_TOKEN
from services.jobs.domain.jobs.held_tasks import MODEL_REFUSES
from tests.e2e.conftest import launched
from tests.gemini_standin import API_KEY, GeminiStandIn, Reply, RunningStandIn
from tests.pdfs import text_pdf
from tests.web.jobs import wait_for

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}


@pytest.fixture(scope="module")
def gemini() -> Iterator[RunningStandIn]:
    answer = Reply(values={"invoice_number": "H-1"})
    with RunningStandIn(GeminiStandIn(default=lambda seen: answer)) as running:
        yield running


@pytest.fixture(scope="module")
def gemini_url(gemini: RunningStandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A platform whose extractor is Gemini (the stand-in), on its embedded defaults."""
    env = {"BYTEREVIEW_GEMINI_API_KEY": API_KEY, "BYTEREVIEW_GEMINI_BASE_URL": gemini.base_url}
    with launched(tmp_path_factory.mktemp("held-platform"), env) as platform:
        yield platform.url


def test_the_job_page_says_why_its_tasks_are_held(
    page: Page, gemini: RunningStandIn, gemini_url: str
) -> None:
    pdf = text_pdf(["Invoice Number: H-1"])
    gemini.state.api_key = "a-key-the-platform-does-not-have"  # its key revoked, say
    with httpx.Client(base_url=gemini_url, headers=DEV, timeout=30) as api:
        created = api.post(
            "/v1/jobs",
            json={"displayName": "Held", "files": [{"path": "h.pdf", "sizeBytes": len(pdf)}]},
        ).json()
        assert httpx.put(created["uploadTargets"][0]["url"], content=pdf).status_code == 200
        job = created["job"]["name"]
        api.post(f"/v1/{job}:finalizeUploads", json={})
        wait_for(api, job, {"READY"})
        fields = [{"name": "invoice_number", "dataType": "text"}]
        assert api.post(f"/v1/{job}:configure", json={"fields": fields}).status_code == 200
        api.post(f"/v1/{job}:start", json={})
        wait_for(api, job, {"RUNNING"})

        page.goto(f"{gemini_url}/app/{job}/results")
        notice = page.get_by_role("status").filter(has_text="refuses this platform's settings")
        expect(notice).to_have_text(MODEL_REFUSES, timeout=30_000)
        # Said over REST too, for other clients; nothing failed meanwhile.
        progress = api.get(f"/v1/{job}/progress").json()
        assert progress["waitingOn"] == [MODEL_REFUSES]
        assert progress["status"] == "RUNNING"
        assert "tasksFailed" not in progress["counters"]

        gemini.state.api_key = API_KEY  # the operator fixed it
        expect(page.get_by_text("Completed", exact=True)).to_be_visible(timeout=60_000)
        expect(page.get_by_text(MODEL_REFUSES)).to_have_count(0)
        [result] = api.get(f"/v1/{job}/results").json()["results"]
    assert result["values"] == {"invoice_number": "H-1"}
