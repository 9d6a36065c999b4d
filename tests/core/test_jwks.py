"""The JWKS cache: a slow identity provider never stalls the event loop or other callers (#14)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bytereview.core import JwtVerifier, Unauthenticated, Unavailable
from bytereview.core.jwks import JwksCache, http_fetch
from tests.identity import AUDIENCE, ISSUER, IdentityProvider, identity_provider

DELAY = 1.5


@pytest.fixture
def slow_idp() -> Iterator[IdentityProvider]:
    with identity_provider(delay=DELAY) as provider:
        yield provider


def _verifier(idp: IdentityProvider, **cache: float) -> JwtVerifier:
    keys = JwksCache(http_fetch(idp.jwks_url, timeout=10.0), **cache)
    return JwtVerifier(jwks_url=idp.jwks_url, issuer=ISSUER, audience=AUDIENCE, keys=keys)


async def _max_loop_lag(until: asyncio.Future[Any]) -> float:
    """The longest the loop was held while `until` ran: ticks every 10 ms, measured."""
    worst = 0.0
    while not until.done():
        before = time.monotonic()
        await asyncio.sleep(0.01)
        worst = max(worst, time.monotonic() - before - 0.01)
    return worst


async def test_a_slow_fetch_holds_neither_the_loop_nor_a_second_fetch(
    slow_idp: IdentityProvider,
) -> None:
    verifier = _verifier(slow_idp)
    token = slow_idp.token("alice")
    callers = asyncio.gather(*(verifier.verify(token) for _ in range(10)))
    lag = await _max_loop_lag(callers)
    principals = await callers
    assert {p.subject for p in principals} == {f"{ISSUER}|alice"}
    assert lag < 0.25, f"the event loop was held for {lag:.2f} s"
    assert len(slow_idp.served) == 1  # ten callers, one fetch in flight


async def test_made_up_key_ids_cannot_force_refetches(slow_idp: IdentityProvider) -> None:
    verifier = _verifier(slow_idp, min_refetch_seconds=30.0)
    await verifier.verify(slow_idp.token("alice"))
    forger = dataclasses.replace(slow_idp, kid="made-up")
    started = time.monotonic()
    for i in range(20):
        with pytest.raises(Unauthenticated):
            await verifier.verify(forger.token(f"mallory{i}"))
    # Refused at once from the cache: no fetch per forged kid, no waiting on the provider.
    assert time.monotonic() - started < DELAY
    assert len(slow_idp.served) == 1


async def test_stale_keys_serve_while_they_are_refreshed(slow_idp: IdentityProvider) -> None:
    verifier = _verifier(slow_idp, max_age_seconds=0.0, min_refetch_seconds=0.0)
    token = slow_idp.token("alice")
    await verifier.verify(token)
    started = time.monotonic()
    await verifier.verify(token)  # stale: answered from the cache, refreshed behind it
    assert time.monotonic() - started < DELAY / 2
    await asyncio.sleep(DELAY + 0.5)
    assert len(slow_idp.served) == 2


async def test_an_unreachable_provider_is_unavailable_not_a_crash() -> None:
    with identity_provider() as idp:
        token = idp.token("alice")
        url = idp.jwks_url
    keys = JwksCache(http_fetch(url, timeout=2.0))
    verifier = JwtVerifier(jwks_url=url, issuer=ISSUER, audience=AUDIENCE, keys=keys)
    with pytest.raises(Unavailable):
        await verifier.verify(token)


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 20_000, "e30.e30.e30"])
async def test_garbage_bearer_tokens_are_unauthenticated(
    slow_idp: IdentityProvider, token: str
) -> None:
    with pytest.raises(Unauthenticated):
        await _verifier(slow_idp).verify(token)
    assert slow_idp.served == []


@pytest.mark.parametrize("subject", ["", "  "])
async def test_a_token_with_an_empty_subject_is_unauthenticated(subject: str) -> None:
    # Signed by the provider, but every such token would be the same user: one tenant
    # shared by whoever holds one.
    with identity_provider() as idp:
        verifier = _verifier(idp)
        assert (await verifier.verify(idp.token("someone"))).subject == f"{ISSUER}|someone"
        with pytest.raises(Unauthenticated, match="subject"):
            await verifier.verify(idp.token(subject))


async def test_an_issuer_that_would_make_two_users_one_is_unauthenticated() -> None:
    # With no issuer configured, a token's iss is whatever the key's holder signed: iss "a|b"
    # with sub "c" and iss "a" with sub "b|c" would both be the user "a|b|c".
    with identity_provider() as idp:
        keys = JwksCache(http_fetch(idp.jwks_url, timeout=10.0))
        verifier = JwtVerifier(jwks_url=idp.jwks_url, issuer="", audience=AUDIENCE, keys=keys)
        one = await verifier.verify(idp.token("b|c", iss="https://a"))
        assert one.subject == "https://a|b|c"
        with pytest.raises(Unauthenticated, match="issuer"):
            await verifier.verify(idp.token("c", iss="https://a|b"))
