"""The browser app: static ES modules from `gateway/web`, History-API routes, the auth config.

The app is a handful of small files served as they are (no build step), so they are read once at
start-up and answered from memory with a content ETag: `no-cache` makes browsers revalidate, and
an unchanged file costs a 304. Every answer carries a strict Content-Security-Policy: scripts and
styles only from this origin, nothing inline, no framing.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from bytereview.core.settings import Settings, StorageBackend, is_loopback
from gateway.errors import http_error

WEB_ROOT = Path(__file__).resolve().parent / "web"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
GCS_ORIGIN = "https://storage.googleapis.com"


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str


PRELOAD_MARKER = b"<!-- modulepreload -->"


def load_files(root: Path = WEB_ROOT) -> dict[str, StaticFile]:
    """Every file under `root`, keyed by its path relative to it (`pages/jobs.js`)."""
    files: dict[str, StaticFile] = {}
    paths = [p for p in sorted(root.rglob("*")) if p.is_file()]
    # Without a bundler the browser finds modules level by level (app.js, then the pages, then
    # what they import): preload links in the shell fetch them all at once instead.
    preload = b"".join(
        b'<link rel="modulepreload" href="/app/%s" />\n    '
        % p.relative_to(root).as_posix().encode()
        for p in paths
        if p.suffix == ".js"
    )
    for path in paths:
        body = path.read_bytes()
        if path.name == "index.html":
            body = body.replace(PRELOAD_MARKER, preload.rstrip())
        media_type = TYPES.get(path.suffix) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        files[path.relative_to(root).as_posix()] = StaticFile(body, media_type, etag)
    return files


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(settings: Settings) -> str:
    """The app's CSP. Uploads may go to the bucket and sign-in to the issuer, nothing else."""
    connect = ["'self'"]
    if settings.storage_backend is StorageBackend.GCS:
        connect.append(_origin(settings.gcs_endpoint) or GCS_ORIGIN)
    issuer = _origin(settings.jwt_issuer)
    if issuer and settings.oidc_client_id:
        connect.append(issuer)
    directives = [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "connect-src " + " ".join(dict.fromkeys(connect)),
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def app_config(settings: Settings) -> dict[str, object]:
    """What the browser needs to sign in. The dev token is handed out in dev mode only."""
    auth: dict[str, object] = {"mode": "apiKey"}
    if settings.jwt_issuer and settings.oidc_client_id:
        auth["mode"] = "oidc"
        auth["oidc"] = {
            "issuer": settings.jwt_issuer,
            "clientId": settings.oidc_client_id,
            "audience": settings.jwt_audience,
            "scopes": "openid email profile",
        }
    if settings.is_dev and is_loopback(settings.gateway_host):
        # Dev mode signs in by itself; single sign-on stays on offer when it is configured.
        # Only on a loopback bind: on any other, whoever could fetch this page would get the
        # token (an admin's), so the app asks for a credential as in production (the dev
        # token `up` prints is accepted there too).
        auth["mode"] = "dev"
        auth["devToken"] = settings.secret("dev_token")
    return {"auth": auth}


def mount_webapp(app: FastAPI, settings: Settings, root: Path = WEB_ROOT) -> None:
    """Serve the app at `/` and `/app/...`; unknown `/app/...` routes get index.html."""
    files = load_files(root)
    security = {
        "content-security-policy": content_security_policy(settings),
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cross-origin-opener-policy": "same-origin",
    }
    config = app_config(settings)

    def serve(request: Request, key: str) -> Response:
        found = files.get(key)
        if found is None:
            missing = http_error(404, "NOT_FOUND", f"the web app has no file {key}")
            missing.headers.update(security)
            return missing
        headers = {**security, "etag": found.etag, "cache-control": "no-cache"}
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type=found.media_type, headers=headers)

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        return serve(request, "index.html")

    @app.get("/app", include_in_schema=False)
    async def app_root(request: Request) -> Response:
        return serve(request, "index.html")

    @app.get("/app/{path:path}", include_in_schema=False)
    async def app_path(request: Request, path: str) -> Response:
        # A name with a dot in its last part is a file; anything else is a route of the app.
        if "." in path.rsplit("/", 1)[-1]:
            return serve(request, path)
        return serve(request, "index.html")

    @app.get("/app-config.json", include_in_schema=False)
    async def app_config_route() -> Response:
        return JSONResponse(config, headers={**security, "cache-control": "no-store"})
