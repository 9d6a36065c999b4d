"""Signing in: OpenID Connect code + PKCE against a provider, API keys, signing out; tenancy."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from bytereview.core.settings import DEV_TOKEN
from tests.pdfs import text_pdf
from tests.web.oidc_provider import Provider

pytestmark = pytest.mark.e2e
DEV = {"Authorization": f"Bearer {DEV_TOKEN}"}


def test_single_sign_on_and_a_second_user_sees_none_of_the_first_users_jobs(
    page: Page, app_url: str, oidc: Provider
) -> None:
    body = text_pdf(["Invoice Number: DEV-1"])
    with httpx.Client(base_url=app_url, headers=DEV, timeout=30) as api:
        created = api.post(
            "/v1/jobs",
            json={
                "displayName": "Developer's job",
                "files": [{"path": "d.pdf", "sizeBytes": len(body)}],
            },
        )
        assert created.status_code == 200, created.text
    page.goto(app_url)
    expect(page.get_by_role("link", name="Developer's job")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in with single sign-on").click()
    # To the provider and back through /app/callback, where the code is exchanged with PKCE.
    expect(page.get_by_label("Signed in as")).to_contain_text("Olivia Oidc")
    expect(page.get_by_label("Signed in as")).to_contain_text("olivia@example.test")
    expect(page).to_have_url(re.compile(r"/app/jobs$"))
    assert oidc.token_requests[-1] == "ok"
    expect(page.get_by_text("You have no jobs yet")).to_be_visible()
    expect(page.get_by_role("link", name="Developer's job")).to_have_count(0)
    # The provider's token is kept for this tab only: a reload stays signed in as Olivia.
    page.reload()
    expect(page.get_by_label("Signed in as")).to_contain_text("Olivia Oidc")
    assert page.evaluate("Object.keys(localStorage).length") == 0


def test_a_forged_callback_is_refused(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/app/callback?code=stolen&state=guessed")
    expect(page.get_by_role("alert")).to_contain_text("does not match this tab")
    expect(page.get_by_role("heading", name="Sign in to ByteReview")).to_be_visible()


def test_sign_out_and_in_with_an_api_key(page: Page, app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=DEV) as api:
        created = api.post("/v1/users/me/apiKeys", json={"displayName": "browser test"})
        assert created.status_code == 200, created.text
        key = created.json()["key"]
    page.goto(app_url)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to ByteReview")).to_be_visible()
    # Signed out stays signed out across a reload (dev mode does not sign back in by itself).
    page.reload()
    expect(page.get_by_role("heading", name="Sign in to ByteReview")).to_be_visible()
    # A refused key is said in words, not the API's ("invalid bearer token: Not enough
    # segments"), with the request id to quote.
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in with API key").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("not an API key ByteReview made (they start with brk_)")
    expect(alert).to_contain_text("request id")
    expect(alert).not_to_contain_text("segments")
    page.get_by_label("API key").fill(key[:-3])
    page.get_by_role("button", name="Sign in with API key").click()
    expect(alert).to_contain_text("This API key was not accepted")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in with API key").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.get_by_label("Signed in as")).to_contain_text("Developer")
    # The key is kept for this tab only, never in localStorage.
    assert page.evaluate("Object.keys(localStorage).length") == 0
