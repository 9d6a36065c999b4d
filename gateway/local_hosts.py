"""A dev gateway on a loopback bind answers requests for its own names only (DNS rebinding).

In dev mode on a loopback bind the gateway hands out the dev token (`/app-config.json`, an
admin's) and usually accepts the well-known one. Any web page the developer opens can reach
it anyway: its own host name, re-pointed by its DNS at 127.0.0.1, makes the browser treat the
gateway as that page's origin, so the page reads the token and calls the API with it. Such a
request still names the page's host in `Host`; refusing every name but the loopback ones and
the configured public URL's keeps the dev gateway for this machine's own clients.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from bytereview.core import Settings
from bytereview.core.settings import is_loopback
from gateway.errors import http_error

LOOPBACK_NAMES = frozenset({"localhost"})


def needs_host_check(settings: Settings) -> bool:
    """Whether the gateway serves dev mode's credentials to whoever can reach it: dev mode on
    a loopback bind (app_config hands out the dev token there)."""
    return settings.is_dev and is_loopback(settings.gateway_host)


def host_name(host: str) -> str:
    """The name in a `Host` value, without its port: `[::1]:8080` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class LocalHostsOnly:
    """Refuses (403) a request whose `Host` is not a loopback name or the public URL's host."""

    def __init__(self, app: ASGIApp, *, public_url: str) -> None:
        self.app = app
        public = (urlsplit(public_url).hostname or "").lower()
        self._names = LOOPBACK_NAMES | ({public} if public else set())

    def allows(self, host: str) -> bool:
        name = host_name(host).rstrip(".")
        return not name or name in self._names or is_loopback(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((v for k, v in scope["headers"] if k == b"host"), b"")
        if self.allows(host.decode("latin-1")):
            await self.app(scope, receive, send)
            return
        refused = http_error(
            403,
            "PERMISSION_DENIED",
            "this dev gateway answers for localhost and its public URL only (Host header)",
        )
        await refused(scope, receive, send)
