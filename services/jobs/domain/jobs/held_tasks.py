"""What a job's user is told while its tasks are held: the extract workers' own word on what
they wait for (their heartbeats' `waiting_on`, worker_runtime), in the user's terms.

A task held this way uses no attempt and fails none, but its job's progress stops: without a
word, a user sees a job that no longer moves. The workers' words are an operator's (the
extractor's name, the refusal's class); the user is told what it means for their tasks, not
which key or model the platform runs.
"""

from __future__ import annotations

from collections.abc import Iterable

MODEL_REFUSES = (
    "The AI model's service refuses this platform's settings, which its operator must fix."
    " Your tasks are held meanwhile; none fails."
)
MODEL_DOWN = (
    "The AI model's service is not answering. Your tasks are held and go on once it does;"
    " none fails."
)
QUOTA = "The AI model's request quota is in use; your tasks go on in turn."
PLATFORM = (
    "One of the platform's own services is not answering. Your tasks are held and go on"
    " once it does; none fails."
)


def told_to_users(reasons: Iterable[str]) -> list[str]:
    """The user's lines for the workers' reasons: each once, in the reasons' order."""
    return list(dict.fromkeys(_told(reason) for reason in reasons if reason))


def _told(reason: str) -> str:
    # "the model (gemini:...)", and "...: credentials rejected" when the service refused the
    # platform's settings (services/extract/worker.py); the quota's waits name it.
    if reason.startswith("the model ("):
        return MODEL_REFUSES if "): " in reason else MODEL_DOWN
    if "quota" in reason or "rate limits" in reason:
        return QUOTA
    return PLATFORM
