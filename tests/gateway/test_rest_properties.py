"""Property: no request, however malformed, makes the gateway or a service answer 5xx (#14).

Every route of the public API is called with generated path segments, query parameters
(known names in both spellings, and unknown ones), JSON bodies and resume headers, through
the real gateway and jobs service. Anything unexpected must be a 4xx with a message."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bytereview.core import DEV_TOKEN
from gateway import public_routes
from gateway.transcoder import VARIABLE, Route

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}
# Backends other than the jobs service are not running in these tests (a 503 is honest).
ROUTES = [r for r in public_routes().routes if r.upstream == "jobs"]

segments = st.one_of(
    st.text(min_size=1, max_size=40).filter(lambda s: s not in (".", "..")),
    st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    st.just("me"),
)
scalars = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(["true", "²", "1e400", "display_name", "displayName,x.y", "%C2%B2"]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


def _path(route: Route, values: list[str]) -> str:
    parts = iter(values)

    def fill(match: re.Match[str]) -> str:
        pattern = match.group(2) or "*"
        return "/".join(
            quote(next(parts), safe="") if s in ("*", "**") else s for s in pattern.split("/")
        )

    return VARIABLE.sub(fill, route.template)


def _names(route: Route) -> list[str]:
    fields = route.method.input_type.fields
    return [n for f in fields for n in (f.name, f.json_name)] + ["nope"]


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, list[tuple[str, str]], bytes, dict[str, str]]:
    route = draw(st.sampled_from(ROUTES))
    stars = sum(
        (m.group(2) or "*").split("/").count("*") for m in VARIABLE.finditer(route.template)
    )
    path = _path(route, draw(st.lists(segments, min_size=stars, max_size=stars)))
    query = draw(st.lists(st.tuples(st.sampled_from(_names(route)), scalars), max_size=4))
    body: Any = draw(
        st.one_of(
            json_values,
            st.dictionaries(st.sampled_from(_names(route)), json_values, max_size=4),
        )
    )
    raw = json.dumps(body).encode() if draw(st.booleans()) else draw(st.binary(max_size=40))
    headers = dict(AUTH)
    if draw(st.booleans()):
        headers["Last-Event-ID"] = draw(st.text(alphabet="0123456789-e+ ", max_size=25))
    return route.verb, path, query, raw, headers


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
async def test_no_request_is_a_server_error(
    client: httpx.AsyncClient,
    request: tuple[str, str, list[tuple[str, str]], bytes, dict[str, str]],
) -> None:
    verb, path, query, raw, headers = request
    content = raw if verb in ("POST", "PATCH", "PUT") else None
    answer = await client.request(
        verb,
        httpx.URL(path).copy_merge_params(tuple(query)),
        headers=headers,
        content=content,
        timeout=30,
    )
    assert answer.status_code < 500, (verb, path, query, raw, answer.text)
    # A Python traceback's own first line: a request may name a field "Traceback", and the
    # error that refuses it names it back (a generated `{"Traceback": null}` did).
    assert "Traceback (most recent call last)" not in answer.text
    if answer.status_code >= 400:
        assert answer.json()["error"]["message"]
