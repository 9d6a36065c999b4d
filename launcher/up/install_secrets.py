"""Per-install secrets of `bytereview up`, kept in the data dir and readable by its owner only.

Dev mode's well-known values are public: with them anyone who can reach the gateway forges
upload URLs (signing secret) or reads every tenant's files (worker token). `up` therefore
generates its own once per data dir and reuses them on every start (URLs signed before a
restart stay valid). The dev token stays the well-known one only when nobody but the local
user can reach the gateway (loopback bind) and no identity provider is configured.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

SECRETS_FILE = "secrets.json"
URL_FILE = "url"
NAMES = ("signing_secret", "worker_token", "dev_token")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def load_or_create(data_dir: Path) -> dict[str, str]:
    """The install's secrets by setting name; created (mode 0600) on first use."""
    path = data_dir / SECRETS_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        stored = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        stored = {}
    values = {
        name: stored[name]
        if isinstance(stored.get(name), str) and len(stored[name]) >= 32
        # 256 bits each: URL-safe, so they travel in headers and URLs as they are.
        else secrets.token_urlsafe(32)
        for name in NAMES
    }
    if values != stored:
        _write_private(path, json.dumps(values, indent=2))
    os.chmod(path, 0o600)  # also tightens a file an older version left readable
    return values


def secret_env(data_dir: Path, *, gateway_host: str, identity_provider: bool) -> dict[str, str]:
    """BYTEREVIEW_* values for the children: random secrets unless only we can connect."""
    values = load_or_create(data_dir)
    env = {
        "BYTEREVIEW_SIGNING_SECRET": values["signing_secret"],
        "BYTEREVIEW_WORKER_TOKEN": values["worker_token"],
    }
    if identity_provider or gateway_host not in LOOPBACK:
        env["BYTEREVIEW_DEV_TOKEN"] = values["dev_token"]
    return env


def write_url(data_dir: Path, url: str) -> Path:
    """Where the CLI finds the gateway `up` serves (see `bytereview.client.api`)."""
    path = data_dir / URL_FILE
    _write_private(path, url + "\n")
    return path


def _write_private(path: Path, text: str) -> None:
    # Created 0600 before any byte is written; renamed into place, so never seen half-written.
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
