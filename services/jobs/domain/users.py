"""Users and API keys: who a principal is, in this service's own tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bytereview.core.auth import (
    Principal,
    PrincipalKind,
    hash_api_key,
    new_api_key,
)
from bytereview.core.errors import (
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from bytereview.core.limits import MAX_DISPLAY_NAME, MAX_KEYS_PER_USER, check_length
from services.jobs.domain.context import JobsContext
from services.jobs.store import models

# An API key's last use is recorded to the minute, not on every call.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
# The users columns' lengths (store/models.py): `issuer|sub`, and the profile's email.
MAX_SUBJECT = 512
MAX_EMAIL = 320


def _checked_subject(principal: Principal) -> str:
    """The principal's subject, the user's key. One that cannot be stored is refused: cut, it
    could name another user; as it was, PostgreSQL refused it on every call (INTERNAL)."""
    subject = principal.subject
    if len(subject) > MAX_SUBJECT or "\x00" in subject:
        raise Unauthenticated(
            f"the token's subject (issuer|sub) must be at most {MAX_SUBJECT} characters without NUL"
        )
    return subject


def _profile(text: str, limit: int) -> str:
    """A profile claim (name, email) as stored: the identity provider's text, not the
    caller's request, so it is cut to its column and cleaned rather than refused (a long
    name in someone's profile made every call of theirs INTERNAL on PostgreSQL)."""
    return text.replace("\x00", "")[:limit]


def _key_and_user(session: Session, key_hash: str) -> tuple[models.ApiKey, models.User] | None:
    row = session.scalar(select(models.ApiKey).where(models.ApiKey.key_hash == key_hash))
    user = None if row is None else session.get(models.User, row.user_id)
    return None if row is None or user is None else (row, user)


class Users:
    # Subject -> user id. A user row is never deleted or re-keyed, so the mapping never goes
    # stale; it saves a database round trip on every call.
    _CACHE_SIZE = 10_000

    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx
        self._ids: dict[str, str] = {}

    async def principal_for_api_key(self, key: str) -> Principal:
        # Looked up on every call, never cached: a revoked key stops working at once.
        found = await self._ctx.read(lambda session: _key_and_user(session, hash_api_key(key)))
        if found is None:
            raise Unauthenticated("invalid API key")
        row, user = found
        now = models.utcnow()
        last = row.last_used_at
        if last is None or now - models.as_utc(last) >= LAST_USED_RESOLUTION:
            # A write per call would serialise every API-key call (SQLite has one writer).
            async with self._ctx.transaction() as session:
                await session.execute(
                    update(models.ApiKey).where(models.ApiKey.id == row.id).values(last_used_at=now)
                )
        return Principal(PrincipalKind.USER, user.subject, user.email, user.display_name, user.id)

    async def resolve(self, principal: Principal, *, display_name: str = "") -> models.User:
        """The principal's user row, created on first sight (the seed's /users/me/sync)."""
        if principal.kind is not PrincipalKind.USER:
            raise PermissionDenied("this call needs a user credential")
        check_length(display_name, MAX_DISPLAY_NAME, field="display_name")
        if principal.user_id:
            async with self._ctx.reading() as session:
                user = await session.get(models.User, principal.user_id)
            if user is None:
                raise Unauthenticated("the API key's user no longer exists")
            return user
        subject = _checked_subject(principal)
        for _ in range(2):
            try:
                async with self._ctx.transaction() as session:
                    user = await session.scalar(
                        select(models.User).where(models.User.subject == subject)
                    )
                    if user is None:
                        user = models.User(subject=subject)
                        session.add(user)
                    user.email = _profile(principal.email, MAX_EMAIL) or user.email or ""
                    user.display_name = (
                        display_name
                        or _profile(principal.display_name, MAX_DISPLAY_NAME)
                        or user.display_name
                        or ""
                    )
                    user.last_seen_at = models.utcnow()
                return user
            except IntegrityError:
                continue  # a concurrent first call created it; read it back
        raise Unauthenticated("could not register the user; try again")

    async def user_id(self, principal: Principal) -> str:
        if principal.user_id:
            return principal.user_id
        cached = self._ids.get(principal.subject)
        if cached is not None:
            return cached
        subject = _checked_subject(principal)
        async with self._ctx.reading() as session:
            found = await session.scalar(
                select(models.User.id).where(models.User.subject == subject)
            )
        user_id = found if found is not None else (await self.resolve(principal)).id
        if len(self._ids) >= self._CACHE_SIZE:
            self._ids.clear()
        self._ids[subject] = user_id
        return user_id

    def _own_user(self, user_id: str, parent_user: str) -> None:
        if parent_user not in ("me", user_id):
            # Another user's keys do not exist, as far as this caller can tell.
            raise NotFound(f"users/{parent_user} not found")

    async def create_api_key(
        self, user_id: str, parent_user: str, display_name: str
    ) -> tuple[models.ApiKey, str]:
        self._own_user(user_id, parent_user)
        check_length(display_name, MAX_DISPLAY_NAME, field="api_key.display_name")
        key = new_api_key()
        async with self._ctx.transaction() as session:
            # The user's row locked first: keys created at once are counted one after the
            # other (unlocked, 60 at once made 51 keys past the limit of 50).
            await session.scalar(
                select(models.User.id).where(models.User.id == user_id).with_for_update()
            )
            count = len(
                (
                    await session.scalars(
                        select(models.ApiKey.id).where(models.ApiKey.user_id == user_id)
                    )
                ).all()
            )
            if count >= MAX_KEYS_PER_USER:
                # The request is well formed; the user's quota is spent (RESOURCE_EXHAUSTED,
                # a 429, not the 400 it was): deleting a key makes room.
                raise ResourceExhausted(
                    f"at most {MAX_KEYS_PER_USER} API keys per user; delete one to make another"
                )
            row = models.ApiKey(
                user_id=user_id,
                display_name=display_name,
                prefix=key[:8],
                key_hash=hash_api_key(key),
            )
            session.add(row)
        return row, key

    async def list_api_keys(self, user_id: str, parent_user: str) -> Sequence[models.ApiKey]:
        self._own_user(user_id, parent_user)
        async with self._ctx.reading() as session:
            return (
                await session.scalars(
                    select(models.ApiKey)
                    .where(models.ApiKey.user_id == user_id)
                    .order_by(models.ApiKey.created_at)
                )
            ).all()

    async def delete_api_key(self, user_id: str, parent_user: str, key_id: str) -> None:
        self._own_user(user_id, parent_user)
        async with self._ctx.transaction() as session:
            # Locked, as a template's delete (templates/library.py) and for the same race.
            row = await session.scalar(
                select(models.ApiKey)
                .where(models.ApiKey.id == key_id, models.ApiKey.user_id == user_id)
                .with_for_update()
            )
            if row is None:
                raise NotFound(f"API key {key_id} not found")
            await session.delete(row)
