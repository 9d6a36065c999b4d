"""Who is calling: the caller's user id, resolved once per call before any servicer runs.

The jobs service's call hook (api.caller) sets it from the authenticated principal; the
servicers read it with `caller_id()` and hand it to the domain explicitly, so domain
methods stay plain functions of their arguments (callable from tests and clean-ups).
"""

from __future__ import annotations

import contextvars

from bytereview.core.errors import PermissionDenied
from services.jobs.domain import names

_user_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("user_id", default=None)


def set_caller(user_id: str | None) -> None:
    """Set for the call being served (None: the caller is a worker, not a user)."""
    _user_id.set(user_id)


def caller_id_or_none() -> str | None:
    return _user_id.get()


def caller_id() -> str:
    """The calling user's id; PermissionDenied when the caller is not a user."""
    user_id = _user_id.get()
    if user_id is None:
        raise PermissionDenied("this call needs a user credential")
    return user_id


def caller_actor() -> str:
    """How the caller appears in job events: `users/{id}`."""
    return names.user_name(caller_id())
