"""Settings refuse dev secrets outside dev mode; signed URLs resist tampering and expire."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import ValidationError

from bytereview.core import signing
from bytereview.core.settings import DEV_SIGNING_SECRET, DEV_TOKEN, Settings

STRONG = "s3cr3t-value-that-is-long-enough"


def test_dev_mode_fills_well_known_secrets() -> None:
    settings = Settings(env="dev")
    assert settings.secret("dev_token") == DEV_TOKEN
    assert settings.secret("signing_secret") == DEV_SIGNING_SECRET


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "SIGNING_SECRET must be set"),
        ({"signing_secret": DEV_SIGNING_SECRET, "worker_token": STRONG}, "dev or too-short"),
        ({"signing_secret": STRONG, "worker_token": "short"}, "dev or too-short"),
        ({"signing_secret": STRONG, "worker_token": STRONG, "dev_token": "x"}, "only allowed"),
        (
            {"signing_secret": STRONG, "worker_token": STRONG, "storage_backend": "gcs"},
            "GCS_BUCKET",
        ),
    ],
)
def test_production_refuses_dev_or_missing_secrets(overrides: dict[str, Any], message: str) -> None:
    # Any: the values are the raw strings the environment would give, which pydantic parses.
    with pytest.raises(ValidationError, match=message):
        Settings(env="production", **overrides)


def test_production_starts_with_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYTEREVIEW_ENV", "production")
    monkeypatch.setenv("BYTEREVIEW_SIGNING_SECRET", STRONG)
    monkeypatch.setenv("BYTEREVIEW_WORKER_TOKEN", STRONG + "2")
    settings = Settings()
    assert not settings.is_dev
    assert settings.secret("dev_token") == ""
    assert STRONG not in repr(settings)  # secrets never show up in logs or reprs


@pytest.mark.parametrize(
    "bad", [{"SIGNING_SECRET": "short"}, {"GATEWAY_PORT": "not a port", "SIGNING_SECRET": STRONG}]
)
def test_a_refused_setting_never_prints_a_secret(
    monkeypatch: pytest.MonkeyPatch, bad: dict[str, str]
) -> None:
    # A whole-model check printed every setting given, cut in the middle: the tail showed
    # the last one (the Gemini key, which comes late) in full.
    secrets = {
        "DATABASE_URL": "postgresql+asyncpg://app:hunter2-db-pass@db/bytereview",
        "WORKER_TOKEN": STRONG,
        "GEMINI_API_KEY": "AIza-gemini-key-1234567890",
    }
    for name, value in {"ENV": "production", **secrets, **bad}.items():
        monkeypatch.setenv(f"BYTEREVIEW_{name}", value)
    with pytest.raises(ValidationError) as err:
        Settings()
    shown = str(err.value)
    assert next(iter(bad)) in shown.upper()  # it still names the setting
    for leaked in ("hunter2", STRONG[-12:], "gemini-key", "1234567890"):
        assert leaked not in shown, shown


def test_signed_urls() -> None:
    expires = int(time.time()) + 60
    params = signing.sign("k", method="PUT", key="jobs/a/uploads/b", expires=expires, max="10")
    assert signing.verify("k", method="PUT", params=params)["max"] == "10"
    for tampered in (
        {**params, "max": "100000"},
        {**params, "key": "jobs/a/uploads/c"},
        {**params, "expires": str(expires + 1000)},
        {k: v for k, v in params.items() if k != "sig"},
    ):
        with pytest.raises(signing.SignatureError):
            signing.verify("k", method="PUT", params=tampered)
    with pytest.raises(signing.SignatureError):
        signing.verify("k", method="GET", params=params)
    with pytest.raises(signing.SignatureError):
        signing.verify("other", method="PUT", params=params)
    with pytest.raises(signing.SignatureError, match="expired"):
        signing.verify("k", method="PUT", params=params, now=expires + 1)


def test_a_signature_cannot_be_moved_between_parameters() -> None:
    # Signed lines are `name=value`: `key` swallowing the `max=` line read as the same
    # lines, so the URL verified with another key and no size limit.
    expires = int(time.time()) + 60
    params = signing.sign("k", method="PUT", key="jobs/a/uploads/b", expires=expires, max="10")
    moved = {"key": "jobs/a/uploads/b\nmax=10", "expires": params["expires"], "sig": params["sig"]}
    renamed = {"key": "jobs/a/uploads/b", "expires=" + params["expires"] + "\nmax": "10"}
    for forged in (moved, {**renamed, "expires": params["expires"], "sig": params["sig"]}):
        with pytest.raises(signing.SignatureError):
            signing.verify("k", method="PUT", params=forged)
    # A signature that is not ASCII is refused like any wrong one (compare_digest raised).
    with pytest.raises(signing.SignatureError, match="invalid signature"):
        signing.verify("k", method="PUT", params={**params, "sig": "é" * 64})


@pytest.mark.parametrize(
    "bind",
    [
        {"gateway_host": "0.0.0.0"},  # noqa: S104 - a wildcard bind is the case under test
        {"gateway_host": "192.0.2.7"},
        {"grpc_port": 50051},  # the services bind 0.0.0.0
        {"jobs_addr": "[::]:50051"},
        {"extract_addr": "jobs.internal:50053"},
    ],
)
def test_dev_secrets_never_where_others_can_connect(bind: dict[str, Any]) -> None:
    # Dev mode's well-known values on a bind other machines reach: anyone was the dev user
    # (an admin) with the dev token, and read every tenant's files with the worker token.
    with pytest.raises(ValidationError, match="can be reached from other machines") as err:
        Settings(env="dev", **bind)
    assert DEV_TOKEN not in str(err.value)
    with pytest.raises(ValidationError, match="BYTEREVIEW_WORKER_TOKEN"):
        Settings(env="dev", dev_token=STRONG, signing_secret=STRONG, worker_token="short", **bind)
    own = Settings(
        env="dev", dev_token=STRONG, signing_secret=STRONG + "2", worker_token=STRONG + "3", **bind
    )
    assert own.secret("dev_token") == STRONG
    # Loopback binds keep the zero-configuration dev values.
    assert (
        Settings(env="dev", gateway_host="localhost", jobs_addr="[::1]:50051").secret("dev_token")
        == DEV_TOKEN
    )


async def test_a_bearer_token_that_is_not_ascii_is_unauthenticated() -> None:
    # compare_digest raised TypeError on it (an INTERNAL) before any token was judged.
    from bytereview.core.auth import TokenAuthenticator
    from bytereview.core.errors import Unauthenticated

    tokens = TokenAuthenticator(Settings(env="dev"))
    with pytest.raises(Unauthenticated):
        await tokens.authenticate_bearer("dev-token-nöt-for-production")
    assert (await tokens.authenticate_bearer(DEV_TOKEN)).subject == "dev"
