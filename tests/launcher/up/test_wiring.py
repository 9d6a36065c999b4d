"""The children's environment: what `up` decided wins, everything else the user set is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.up.wiring import Layout, platform_env, worker_env

ANY = "0.0.0.0"  # noqa: S104 - a wildcard bind is the case under test
LAYOUT = Layout(data_dir=Path("/srv/br"), nats_port=4333, gateway_host=ANY, gateway_port=9090)


def test_the_launchers_decisions_reach_the_children(monkeypatch: pytest.MonkeyPatch) -> None:
    # Values the launcher read from these very settings, then resolved (a taken port moved).
    monkeypatch.setenv("BYTEREVIEW_GATEWAY_PORT", "8080")
    monkeypatch.setenv("BYTEREVIEW_DATA_DIR", "elsewhere")
    monkeypatch.setenv("BYTEREVIEW_NATS_URL", "nats://10.0.0.1:4222")
    env = platform_env(LAYOUT)
    assert env["BYTEREVIEW_GATEWAY_PORT"] == "9090"
    assert env["BYTEREVIEW_GATEWAY_HOST"] == ANY
    assert env["BYTEREVIEW_DATA_DIR"] == "/srv/br"
    assert env["BYTEREVIEW_NATS_URL"] == "nats://127.0.0.1:4333"


def test_the_users_other_settings_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYTEREVIEW_GEMINI_API_KEY", "k")
    monkeypatch.setenv("BYTEREVIEW_JOBS_ADDR", "127.0.0.1:6000")
    monkeypatch.delenv("BYTEREVIEW_ENV", raising=False)
    env = platform_env(LAYOUT)
    assert env["BYTEREVIEW_GEMINI_API_KEY"] == "k"
    assert env["BYTEREVIEW_JOBS_ADDR"] == "127.0.0.1:6000"
    assert env["BYTEREVIEW_ENV"] == "dev"
    assert env["BYTEREVIEW_INGEST_ADDR"].startswith("127.0.0.1:")


def test_a_wildcard_gateway_is_probed_on_loopback() -> None:
    assert LAYOUT.gateway_url == "http://127.0.0.1:9090"
    assert Layout(Path("/d"), 1, "127.0.0.2", 80).gateway_url == "http://127.0.0.2:80"


def test_extra_workers_serve_only_the_queue() -> None:
    assert worker_env({"A": "1"}, "extract-1") == {"A": "1", "BYTEREVIEW_POD_NAME": "extract-1"}
    extra = worker_env({}, "extract-2", worker_only=True)
    assert extra == {"BYTEREVIEW_POD_NAME": "extract-2", "BYTEREVIEW_WORKER_ONLY": "true"}


def test_an_installs_own_dev_token_is_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `up` printed the token in the platform's log; one of the install's own (a bind others
    # reach) is a secret: the log says where it is.
    from bytereview.core.settings import DEV_TOKEN
    from launcher.up.supervisor import Supervisor
    from launcher.up.wiring import announce

    monkeypatch.delenv("BYTEREVIEW_DEV_TOKEN", raising=False)
    layout = Layout(data_dir=tmp_path, nats_port=4333, gateway_host=ANY, gateway_port=9090)
    env = platform_env(layout, {"BYTEREVIEW_DEV_TOKEN": "own-random-token-0123456789"})
    announce(Supervisor(), layout, env)
    said = capsys.readouterr().out
    assert "own-random-token" not in said
    assert str(tmp_path / "secrets.json") in said
    announce(Supervisor(), layout, platform_env(layout))  # the public value, on loopback
    assert f"dev API token: {DEV_TOKEN}" in capsys.readouterr().out
