"""A real Chromium (Debian's package, driven by Playwright) against `bytereview up`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from bytereview.core import DEV_TOKEN
from tests.e2e.conftest import launched
from tests.web.oidc_provider import CLIENT_ID, Provider, oidc_provider

CHROMIUM = "/usr/bin/chromium"
# No sandbox (containers run as root), no network of its own (the machine is offline).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The suite runs the platform, Chromium and other tests side by side on two cores: a page that
# reads three pages of files one after the other took over Playwright's default 5 s there (CI
# run 51). Waits end as soon as the page is right; only a failing assertion waits this long.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def oidc() -> Iterator[Provider]:
    with oidc_provider() as provider:
        yield provider


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory, oidc: Provider) -> Iterator[str]:
    # Dev mode (signed in by itself) with single sign-on configured too, as a team might run it.
    env = {
        "BYTEREVIEW_JWT_ISSUER": oidc.issuer,
        "BYTEREVIEW_JWT_JWKS_URL": f"{oidc.issuer}/jwks",
        "BYTEREVIEW_JWT_AUDIENCE": CLIENT_ID,
        "BYTEREVIEW_OIDC_CLIENT_ID": CLIENT_ID,
        # With an identity provider configured `up` makes its dev token random; the tests
        # call the API with the known one, so they set it (the gateway listens on loopback).
        "BYTEREVIEW_DEV_TOKEN": DEV_TOKEN,
    }
    with launched(tmp_path_factory.mktemp("web-platform"), env) as running:
        yield running.url


# Per module, not per session: sync Playwright keeps an event loop running in this thread while
# it lives, and pytest-asyncio's tests elsewhere in the run need the thread free.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("Chromium is missing: `apt-get install chromium` (tools/test.py does it)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # A script-run dialog (alert from injected markup) fails the test; our own <dialog> is HTML.
    page.on("dialog", lambda dialog: errors.append(f"unexpected {dialog.type}: {dialog.message}"))
    yield page
    assert not errors, errors
