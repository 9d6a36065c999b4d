"""Fixtures shared by the extract service's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gemini_standin import GeminiStandIn, RunningStandIn


@pytest.fixture
def gemini() -> Iterator[RunningStandIn]:
    """The Gemini stand-in (real wire format), answering each call with its defaults unless
    a test scripts it."""
    with RunningStandIn(GeminiStandIn()) as server:
        yield server
