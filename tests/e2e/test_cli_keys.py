"""`bytereview keys`: a partner without the web app makes, lists and revokes an API key from
the command line, and the key works, then stops working, against the real platform."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_cli import cli

pytestmark = pytest.mark.e2e


def test_a_key_made_listed_used_and_revoked_from_the_command_line(platform: Platform) -> None:
    url = platform.url
    made = cli(url, "keys", "create", "Nightly ETL")
    assert made.returncode == 0, made.stderr
    # Only the secret on stdout, so a script can take it whole.
    secret = made.stdout.strip()
    assert secret.startswith("brk_"), made.stdout
    assert "\n" not in secret
    name = made.stderr.split(":", 1)[0]
    assert name.startswith("users/"), made.stderr
    assert "/apiKeys/" in name, made.stderr
    assert "shown this once" in made.stderr

    listed = cli(url, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if line.startswith(name)]
    assert line.endswith("Nightly ETL")
    assert "last used never" in line
    assert secret not in listed.stdout

    used = cli(url, "jobs", "list", "--api-key", secret)
    assert used.returncode == 0, used.stderr
    assert "last used never" not in next(
        line for line in cli(url, "keys", "list").stdout.splitlines() if line.startswith(name)
    )

    key_id = name.rsplit("/", 1)[1]
    revoked = cli(url, "keys", "delete", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == f"revoked users/me/apiKeys/{key_id}"
    refused = cli(url, "jobs", "list", "--api-key", secret)
    assert refused.returncode == 1
    assert refused.stderr.startswith("bytereview: ")
    gone = cli(url, "keys", "delete", name)
    assert gone.returncode == 1
    assert "not found" in gone.stderr.lower()
    assert name not in cli(url, "keys", "list").stdout
