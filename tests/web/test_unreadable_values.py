"""An answer the platform could not use, shown to the reviewer: the model (the Gemini
stand-in, behind a whole `bytereview up`) wrote a total in words; the results page and the
review walk say the value is empty because of it, and what the answer was."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.e2e.conftest import launched
from tests.gemini_standin import API_KEY, GeminiStandIn, Reply, RunningStandIn
from tests.pdfs import text_pdf
from tests.web.jobs import wait_for

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}
PATH = "invoices/words.pdf"
WORDS = "twelve dollars and fifty cents"


@pytest.fixture(scope="module")
def gemini_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A platform whose extractor is Gemini (the stand-in), on its embedded defaults."""
    answer = Reply(values={"invoice_number": "W-1", "total": WORDS})
    with RunningStandIn(GeminiStandIn(default=lambda seen: answer)) as gemini:
        env = {
            "BYTEREVIEW_GEMINI_API_KEY": API_KEY,
            "BYTEREVIEW_GEMINI_BASE_URL": gemini.base_url,
        }
        with launched(tmp_path_factory.mktemp("gemini-platform"), env) as platform:
            yield platform.url


def test_an_answer_the_platform_could_not_use_is_shown_to_the_reviewer(
    page: Page, gemini_url: str
) -> None:
    pdf = text_pdf(["Invoice Number: W-1", f"Total Due: {WORDS}"])
    with httpx.Client(base_url=gemini_url, headers=DEV, timeout=30) as api:
        created = api.post(
            "/v1/jobs",
            json={"displayName": "Words", "files": [{"path": PATH, "sizeBytes": len(pdf)}]},
        ).json()
        assert httpx.put(created["uploadTargets"][0]["url"], content=pdf).status_code == 200
        job = created["job"]["name"]
        api.post(f"/v1/{job}:finalizeUploads", json={})
        wait_for(api, job, {"READY"})
        fields = [
            {"name": "invoice_number", "dataType": "text"},
            {"name": "total", "dataType": "currency"},
        ]
        assert api.post(f"/v1/{job}:configure", json={"fields": fields}).status_code == 200
        api.post(f"/v1/{job}:start", json={})
        wait_for(api, job, {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED"})
        [result] = api.get(f"/v1/{job}/results").json()["results"]
    assert result["values"] == {"invoice_number": "W-1", "total": None}
    problem = result["assessments"]["total"]["problem"]
    assert problem == f"no amount in {WORDS!r}"

    page.goto(f"{gemini_url}/app/{job}/results")
    # Slashes escaped: Playwright sends the pattern as /.../.
    named = re.escape(f"Evidence for total of {PATH}: needs review").replace("/", r"\/")
    badge = page.get_by_role("button", name=re.compile("^" + named))
    expect(badge).to_have_accessible_name(re.compile(re.escape(problem) + "$"))
    expect(badge).to_have_attribute("title", problem)
    page.get_by_role("button", name="Review values").click()
    walk = page.get_by_role("region", name="Review")
    expect(walk).to_contain_text("empty: the extractor's answer could not be used")
    expect(walk).to_contain_text(f"Extractor's answer{problem}")
