"""What is said about the model's service refusing the platform's settings."""

from __future__ import annotations

import logging

import pytest

from services.extract.model.refused_settings import REDACTED, RefusalEpisodes, redacted

GOOGLE_KEY = "AIza" + "S" * 35  # the shape of a Google API key


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # The configured key, wherever it appears.
        ("Invalid API key: my-secret-key", f"Invalid API key: {REDACTED}"),
        # The service quoting a key, the configured one or not.
        (
            "Permission denied: Consumer 'api_key:another-one' has been suspended.",
            f"Permission denied: Consumer 'api_key:{REDACTED}' has been suspended.",
        ),
        (f"key {GOOGLE_KEY} was reported as leaked", f"key {REDACTED} was reported as leaked"),
        # A URL with the key as a query parameter keeps its other parameters.
        (
            "GET https://x.googleapis.com/v1beta/models?key=abc123&alt=json failed",
            f"GET https://x.googleapis.com/v1beta/models?key={REDACTED}&alt=json failed",
        ),
        # Nothing like a key: unchanged.
        ("API key not valid. Please pass a valid API key.", None),
    ],
)
def test_keys_are_redacted(text: str, said: str | None) -> None:
    assert redacted(text, "my-secret-key") == (said if said is not None else text)


def test_a_refusal_is_said_once_an_episode(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="services.extract.model.refused_settings")
    episodes = RefusalEpisodes("gemini:m")
    for _ in range(5):  # many tasks meet it
        episodes.refused("credentials rejected (400 API_KEY_INVALID) — fix the API key secret")
    episodes.accepted()
    episodes.accepted()
    episodes.refused("credentials rejected (403 SERVICE_DISABLED) — fix the API key secret")
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in said] == ["ERROR", "INFO", "ERROR"]
    assert said[0][1].startswith(
        "gemini:m: credentials rejected (400 API_KEY_INVALID) — fix the API key secret (then"
        " restart the extract workers"
    )
    assert "accepts the platform's settings again" in said[1][1]
    assert "403 SERVICE_DISABLED" in said[2][1]
    assert episodes.rejected
