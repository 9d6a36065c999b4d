"""`up` runs with its own secrets, never the well-known dev ones when others can reach it (#14)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bytereview.client.api import Api, url_of_local_platform
from bytereview.core import DEV_TOKEN, DEV_WORKER_TOKEN, Settings
from bytereview.core.settings import DEV_SIGNING_SECRET
from launcher.up import install_secrets
from launcher.up.wiring import Layout, platform_env


def test_secrets_are_random_private_and_kept(tmp_path: Path) -> None:
    first = install_secrets.load_or_create(tmp_path)
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    assert set(first.values()).isdisjoint({DEV_TOKEN, DEV_WORKER_TOKEN, DEV_SIGNING_SECRET})
    assert all(len(v) >= 32 for v in first.values())
    # Reused on the next start: URLs signed before a restart stay valid.
    assert install_secrets.load_or_create(tmp_path) == first
    assert install_secrets.load_or_create(tmp_path / "other") != first


@pytest.mark.parametrize(
    ("host", "identity_provider", "dev_token_is_random"),
    [("127.0.0.1", False, False), ("0.0.0.0", False, True), ("127.0.0.1", True, True)],  # noqa: S104
)
def test_the_children_never_get_the_well_known_secrets(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    identity_provider: bool,
    dev_token_is_random: bool,
) -> None:
    for name in ("SIGNING_SECRET", "WORKER_TOKEN", "DEV_TOKEN"):
        monkeypatch.delenv(f"BYTEREVIEW_{name}", raising=False)
    own = install_secrets.secret_env(
        tmp_path, gateway_host=host, identity_provider=identity_provider
    )
    env = platform_env(Layout(tmp_path, 4222, host, 8080), own)
    monkeypatch.setattr("os.environ", env)
    settings = Settings()
    assert settings.secret("signing_secret") not in (DEV_SIGNING_SECRET, "")
    assert settings.secret("worker_token") not in (DEV_WORKER_TOKEN, "")
    assert (settings.secret("dev_token") != DEV_TOKEN) is dev_token_is_random


def test_the_cli_finds_the_url_up_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BYTEREVIEW_URL", raising=False)
    monkeypatch.setenv("BYTEREVIEW_DATA_DIR", str(tmp_path))
    assert url_of_local_platform() == ""
    install_secrets.write_url(tmp_path, "http://127.0.0.1:41234")
    with Api.from_env(None, None, None) as api:
        assert api.url == "http://127.0.0.1:41234"
    monkeypatch.setenv("BYTEREVIEW_URL", "http://elsewhere:1")
    with Api.from_env(None, None, None) as api:
        assert api.url == "http://elsewhere:1"
