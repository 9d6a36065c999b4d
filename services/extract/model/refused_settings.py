"""The model's service refusing the platform's own settings (its API key, its model name,
its project's region or billing): said without the key, and said once.

Each is an operator's configuration error that no user can fix: the worker waits it out (no
task fails, no attempt is used) and says so at error level once per episode, from the first
refusal to the next call the service accepts, however many tasks meet it meanwhile.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

REDACTED = "[redacted]"
# What may carry a key in the text of an error: Google API keys themselves (the service
# quotes them: "Consumer 'api_key:AIza...' has been suspended"), and `key=` in a URL.
_KEYS = (
    re.compile(r"AIza[0-9A-Za-z_\-]{35}"),
    re.compile(r"(?i)(?<=api_key:)[^\s'\",;]+"),
    re.compile(r"(?i)(?<=[?&]key=)[^&\s'\"]+"),
)


def redacted(text: str, secret: str = "") -> str:
    """`text` without `secret` or anything that looks like an API key: error messages are
    logged and written to tasks users read."""
    if secret:
        text = text.replace(secret, REDACTED)
    for pattern in _KEYS:
        text = pattern.sub(REDACTED, text)
    return text


class RefusalEpisodes:
    """Says at error level when the model's service starts refusing the platform's settings,
    and at info level when it accepts them again; the calls in between are quiet (each
    waits)."""

    def __init__(self, what: str) -> None:
        self._what = what
        self.rejected = False

    def refused(self, reason: str) -> None:
        """`reason`: the service's refusal and what to fix, as the extractor words it (no
        key in it)."""
        if self.rejected:
            return
        self.rejected = True
        log.error(
            "%s: %s (then restart the extract workers if they read it from their"
            " environment); their tasks wait meanwhile, none fails",
            self._what,
            reason,
        )

    def accepted(self) -> None:
        if self.rejected:
            self.rejected = False
            log.info("%s accepts the platform's settings again; tasks go on", self._what)
