"""How the gateway serves the web app: files, History-API routes, CSP, cache, auth config."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from bytereview.core.settings import DEV_TOKEN, Settings
from gateway.webapp import WEB_ROOT, mount_webapp

PRODUCTION = {
    "env": "production",
    "signing_secret": "s" * 32,
    "worker_token": "w" * 32,
}


def client_for(settings: Settings) -> httpx.AsyncClient:
    app = FastAPI()
    mount_webapp(app, settings)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.test")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(Settings(data_dir=tmp_path)) as client:
        yield client


async def test_index_and_app_routes_serve_the_shell(client: httpx.AsyncClient) -> None:
    for path in ("/", "/app", "/app/jobs", "/app/jobs/" + "a" * 32 + "/results"):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/app/app.js">' in answer.text


async def test_the_shell_preloads_every_module(client: httpx.AsyncClient) -> None:
    shell = (await client.get("/")).text
    modules = sorted(p.relative_to(WEB_ROOT).as_posix() for p in WEB_ROOT.rglob("*.js"))
    assert len(modules) > 10
    for module in modules:
        assert f'<link rel="modulepreload" href="/app/{module}" />' in shell


async def test_files_are_served_with_their_types(client: httpx.AsyncClient) -> None:
    script = await client.get("/app/pages/job.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "renderJob" in script.text
    style = await client.get("/app/styles.css")
    assert style.headers["content-type"].startswith("text/css")


async def test_missing_files_and_paths_outside_the_app_are_404(client: httpx.AsyncClient) -> None:
    for path in ("/app/nope.js", "/app/../webapp.py", "/app/..%2fwebapp.py", "/app/%2e%2e/app.py"):
        answer = await client.get(path)
        assert answer.status_code == 404, path


async def test_every_answer_carries_a_strict_csp(client: httpx.AsyncClient) -> None:
    for path in ("/", "/app/app.js", "/app-config.json", "/app/nope.js"):
        csp = (await client.get(path)).headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert "default-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp


async def test_unchanged_files_revalidate_to_304(client: httpx.AsyncClient) -> None:
    first = await client.get("/app/app.js")
    assert first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    again = await client.get("/app/app.js", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    other = await client.get("/app/app.js", headers={"if-none-match": '"stale"'})
    assert other.status_code == 200


async def test_dev_mode_hands_out_the_dev_token(client: httpx.AsyncClient) -> None:
    answer = await client.get("/app-config.json")
    assert answer.json() == {"auth": {"mode": "dev", "devToken": DEV_TOKEN}}
    assert answer.headers["cache-control"] == "no-store"


async def test_dev_mode_hands_out_no_token_beyond_this_machine(tmp_path: Path) -> None:
    # `bytereview up --host 0.0.0.0` gives the dev token a random value, and the page gave it
    # to whoever asked: anyone on the network signed in as the dev user, an admin.
    token = "t" * 32
    exposed = Settings(
        data_dir=tmp_path,
        gateway_host="0.0.0.0",  # noqa: S104 - a wildcard bind is the case under test
        dev_token=token,
        signing_secret="s" * 32,
        worker_token="w" * 32,
    )
    async with client_for(exposed) as client:
        answer = await client.get("/app-config.json")
    assert answer.json() == {"auth": {"mode": "apiKey"}}
    assert token not in answer.text


async def test_production_never_hands_out_a_token(tmp_path: Path) -> None:
    plain = Settings(data_dir=tmp_path, **PRODUCTION)  # type: ignore[arg-type]
    async with client_for(plain) as client:
        config = (await client.get("/app-config.json")).json()
    assert config == {"auth": {"mode": "apiKey"}}
    oidc = Settings(
        data_dir=tmp_path,
        jwt_issuer="https://login.example.com/realms/acme",
        jwt_audience="bytereview",
        jwt_jwks_url="https://login.example.com/realms/acme/certs",
        oidc_client_id="bytereview-web",
        **PRODUCTION,  # type: ignore[arg-type]
    )
    async with client_for(oidc) as client:
        answer = await client.get("/app-config.json")
    config = answer.json()
    assert config["auth"]["mode"] == "oidc"
    assert config["auth"]["oidc"]["issuer"] == "https://login.example.com/realms/acme"
    assert config["auth"]["oidc"]["clientId"] == "bytereview-web"
    assert "devToken" not in answer.text
    # The browser talks to the issuer for discovery and the token exchange.
    assert (
        "connect-src 'self' https://login.example.com" in answer.headers["content-security-policy"]
    )


async def test_direct_uploads_to_the_bucket_are_allowed_by_the_csp(tmp_path: Path) -> None:
    gcs = Settings(data_dir=tmp_path, storage_backend="gcs", gcs_bucket="b")
    async with client_for(gcs) as client:
        csp = (await client.get("/")).headers["content-security-policy"]
    assert "connect-src 'self' https://storage.googleapis.com" in csp


def test_no_html_is_built_from_strings() -> None:
    """Text goes in through textContent/createElement only; the CSP is the second line."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(")
    found = [
        f"{path.relative_to(WEB_ROOT)}:{number}"
        for path in WEB_ROOT.rglob("*.js")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if sinks.search(line)
    ]
    assert not found, found


def test_the_shell_has_no_inline_script_or_style() -> None:
    index = (WEB_ROOT / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", index)
    assert scripts
    assert all("src=" in tag for tag in scripts)
    assert "<style" not in index
    assert " style=" not in index
    assert not re.search(r"\son[a-z]+=", index)
