"""Hand-made requests from issue #14: each was a bare 500 (or a leak); now a clear answer."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import AsyncIterator
from urllib.parse import unquote

import httpx
import pytest

from bytereview.core import DEV_TOKEN, DEV_WORKER_TOKEN, Settings
from gateway import create_app
from services.jobs.server import RunningJobsService
from tests.pdfs import text_pdf

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}
SSE = {**AUTH, "Accept": "text/event-stream"}
FIELDS = [{"name": "total", "dataType": "currency"}]


async def _job(client: httpx.AsyncClient, name: str = "") -> str:
    body: dict[str, object] = {"files": [{"path": "a.pdf", "sizeBytes": 3}]}
    if name:
        body["displayName"] = name
    created = await client.post("/v1/jobs", headers=AUTH, json=body)
    assert created.status_code == 200, created.text
    return str(created.json()["job"]["name"])


async def _template(client: httpx.AsyncClient, headers: dict[str, str], name: str = "t") -> str:
    made = await client.post(
        "/v1/templates", headers=headers, json={"displayName": name, "fields": FIELDS}
    )
    assert made.status_code == 200, made.text
    return str(made.json()["name"])


def _assert_4xx(response: httpx.Response, status: int = 400) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    assert "Traceback" not in response.text


async def test_update_masks_in_either_spelling(client: httpx.AsyncClient) -> None:
    template = await _template(client, AUTH)
    for mask in ("display_name", "displayName"):
        patched = await client.patch(
            f"/v1/{template}",
            headers=AUTH,
            params={"updateMask": mask},
            json={"displayName": f"renamed {mask}"},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["displayName"] == f"renamed {mask}"
    for mask in ("a b", "displayName,displayName"):
        # A path twice: the OpenAPI document declares the mask's items unique.
        _assert_4xx(
            await client.patch(
                f"/v1/{template}", headers=AUTH, params={"updateMask": mask}, json={}
            )
        )


@pytest.mark.parametrize("value", ["1180591620717411303424", str(2**63), "-1" + "0" * 30])
async def test_integers_out_of_int64_range_are_400(client: httpx.AsyncClient, value: str) -> None:
    job = await _job(client)
    _assert_4xx(await client.get(f"/v1/{job}:watch", headers=SSE, params={"afterSequence": value}))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("path", "param", "value"),
    [
        ("/v1/jobs", "pageSize", "1_0"),
        ("/v1/jobs", "pageSize", " 5"),
        ("/v1/jobs", "pageSize", "\u0661"),  # ARABIC-INDIC DIGIT ONE
        ("/v1/jobs/-/reviewItems", "confidenceBelow", "0.\u0665"),
        ("/v1/jobs/-/reviewItems", "confidenceBelow", "0.5_0"),
    ],
)
async def test_numbers_in_the_url_are_ascii_decimals(
    client: httpx.AsyncClient, path: str, param: str, value: str
) -> None:
    # int() and float() took these (`1_0` was a page of 10), which no client means.
    _assert_4xx(await client.get(path, headers=AUTH, params={param: value}))


@pytest.mark.parametrize("last_id", ["99999999999999999999", "²", "1e3", "-5"])
async def test_a_malformed_last_event_id_is_400(client: httpx.AsyncClient, last_id: str) -> None:
    job = await _job(client)
    headers = [(k.encode(), v.encode()) for k, v in {**SSE, "Last-Event-ID": last_id}.items()]
    _assert_4xx(await client.get(f"/v1/{job}:watch", headers=headers))


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"files": ' + b"[" * 40 + b"]" * 40 + b"}", b'{"a": 1' + b"0" * 5000 + b"}"],
)
async def test_deep_or_huge_json_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/v1/jobs", headers={**AUTH, "content-type": "application/json"}, content=body
    )
    _assert_4xx(response)


@pytest.mark.parametrize(
    "body",
    [
        b'{"\\ud800": 1}',
        b'{"files": [{"\\udfff": 1}]}',
        b'{"files": "\\ud800"}',
        b'{"files": ["\\ud800"]}',
        b'{"displayName": "\xed\xa0\x80"}',
        b'{"files": [{"path": "a.pdf", "sizeBytes": NaN}]}',
        b'{"displayName": Infinity}',
        b'{"displayName": "a", "displayName": "b"}',
        b'{"files": [{"path": "a.pdf", "path": "b.pdf", "sizeBytes": 3}]}',
    ],
)
async def test_json_that_protobuf_cannot_take_is_400(
    client: httpx.AsyncClient, body: bytes
) -> None:
    # Lone surrogates (escaped or raw) crashed protobuf's parser: a 500 or a reset connection.
    # NaN/Infinity are not JSON; a key given twice lost one of its values silently.
    response = await client.post(
        "/v1/jobs", headers={**AUTH, "content-type": "application/json"}, content=body
    )
    _assert_4xx(response)
    assert "not valid JSON" in response.json()["error"]["message"]
    assert (await client.get("/v1/jobs", headers=AUTH)).json().get("jobs", []) == []


@pytest.mark.parametrize(
    "body",
    [
        {"display_name": "x", "displayName": "y"},
        {"files": [{"path": "a.pdf", "sizeBytes": 3, "size_bytes": 4}]},
        {"persist_data": True, "persistData": False},
    ],
)
async def test_a_field_under_both_its_names_is_400(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    # json_format kept whichever spelling came last, silently (a job named "y").
    body.setdefault("files", [{"path": "a.pdf", "sizeBytes": 3}])
    response = await client.post("/v1/jobs", headers=AUTH, json=body)
    _assert_4xx(response)
    assert "both set the field" in response.json()["error"]["message"]
    assert (await client.get("/v1/jobs", headers=AUTH)).json().get("jobs", []) == []


async def test_a_field_under_both_its_names_in_the_query_or_a_body_field_is_400(
    client: httpx.AsyncClient,
) -> None:
    # `?pageSize=1&page_size=1000`: the last one won.
    listed = await client.get("/v1/jobs", headers=AUTH, params=[("pageSize", 1), ("page_size", 2)])
    _assert_4xx(listed)
    assert "both set the field 'page_size'" in listed.json()["error"]["message"]
    # `body: "template"` (UpdateTemplate): the message inside is checked too.
    template = await _template(client, AUTH)
    patched = await client.patch(
        f"/v1/{template}",
        headers=AUTH,
        params={"updateMask": "display_name"},
        json={"displayName": "a", "display_name": "b"},
    )
    _assert_4xx(patched)
    # One name each is fine, in either spelling.
    assert (await client.get("/v1/jobs", headers=AUTH, params={"page_size": 1})).status_code == 200


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "²",
        "9" * 5000,
        _token({"o": 10**30, "s": "x"}),
        _token({"o": True, "s": "x"}),
        _token({"o": 1.5, "s": "x"}),
        _token([1, 2]),
        _token({"o": 1, "s": ["x"]}),
    ],
)
async def test_hostile_page_tokens_are_400(client: httpx.AsyncClient, token: str) -> None:
    job = await _job(client)
    for path in ("/v1/jobs", f"/v1/{job}/files", f"/v1/{job}/events", "/v1/templates"):
        _assert_4xx(await client.get(path, headers=AUTH, params={"pageToken": token}))


async def test_an_edited_page_token_for_the_right_query_is_400(client: httpx.AsyncClient) -> None:
    await _template(client, AUTH, "one")
    await _template(client, AUTH, "two")
    first = await client.get("/v1/templates", headers=AUTH, params={"pageSize": 1})
    real = first.json()["nextPageToken"]
    raw = bytearray(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))
    raw[-2] ^= 1  # one bit of the key changed: the HMAC no longer matches
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    response = await client.get("/v1/templates", headers=AUTH, params={"pageToken": forged})
    _assert_4xx(response, 400)
    assert "page_token" in response.json()["error"]["message"]
    assert (
        await client.get("/v1/templates", headers=AUTH, params={"pageToken": real})
    ).status_code == 200


async def test_configure_with_a_template_of_nobody_or_of_another_user(
    client: httpx.AsyncClient, idp: object
) -> None:
    from tests.identity import IdentityProvider

    assert isinstance(idp, IdentityProvider)
    other = {"Authorization": f"Bearer {idp.token('someone-else')}"}
    synced = await client.post("/v1/users/me:sync", headers=other, json={})
    assert synced.status_code == 200, synced.text
    theirs = await _template(client, other)
    job = await _job(client)
    missing = "templates/" + "0" * 32
    answers = []
    for template in (theirs, missing):
        for fields in (FIELDS, []):
            body: dict[str, object] = {"template": template}
            if fields:
                body["fields"] = fields
            response = await client.post(f"/v1/{job}:configure", headers=AUTH, json=body)
            _assert_4xx(response, 404)
            answers.append(response.json()["error"]["message"].replace(theirs, missing))
    # Another tenant's template and no template at all cannot be told apart.
    assert len(set(answers)) == 1, answers
    got = await client.get(f"/v1/{job}", headers=AUTH)
    assert "template" not in got.json() or not got.json()["template"]


@pytest.mark.parametrize("name", ["Счета март", "été", 'a"; filename="evil.exe', "a\r\nX-Evil: 1"])
async def test_export_file_names_are_encoded(client: httpx.AsyncClient, name: str) -> None:
    job = await _job(client, name)
    exported = await client.get(f"/v1/{job}:export", headers=AUTH, params={"format": "csv"})
    assert exported.status_code == 200, exported.text
    disposition = exported.headers["content-disposition"]
    assert disposition.isascii()
    assert "\r" not in disposition
    assert "\n" not in disposition
    assert "x-evil" not in exported.headers
    fallback, encoded = disposition.split("; filename*=UTF-8''")
    assert fallback.startswith('attachment; filename="')
    assert fallback.count('"') == 2
    expected = "".join(c for c in name if c not in "\r\n")
    assert unquote(encoded) == f"{expected}.csv"


async def test_the_gateway_refuses_the_worker_token(client: httpx.AsyncClient) -> None:
    for headers in (
        {"Authorization": f"Bearer {DEV_WORKER_TOKEN}"},
        {"x-api-key": DEV_WORKER_TOKEN},
    ):
        _assert_4xx(await client.get("/v1/jobs", headers=headers), 401)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_method_no_route_serves_is_405_with_allow(client: httpx.AsyncClient) -> None:
    # Starlette answered `{"detail": ...}` for its routes, and the storage path, which exists,
    # was a 404 from the API's catch-all.
    for method, path, allow in (
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", "/v1/storage/objects", "GET, HEAD, PUT"),
        ("TRACE", "/v1/storage/objects", "GET, HEAD, PUT"),
    ):
        response = await client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allow
        _assert_4xx(response, 405)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_ambiguous_credential_is_401(client: httpx.AsyncClient) -> None:
    # The first Authorization header was forwarded, the rest dropped: a proxy checking the
    # last one would disagree with us about who is calling.
    for headers in (
        [("authorization", AUTH["Authorization"]), ("authorization", "Bearer forged")],
        [("authorization", AUTH["Authorization"]), ("x-api-key", "brk_forged")],
    ):
        _assert_4xx(await client.get("/v1/jobs", headers=headers), 401)
    assert (await client.get("/v1/jobs", headers=AUTH)).status_code == 200


async def test_an_upload_url_writes_its_file_once(client: httpx.AsyncClient) -> None:
    pdf = text_pdf(["Total: 5.00"])
    created = await client.post(
        "/v1/jobs", headers=AUTH, json={"files": [{"path": "a.pdf", "sizeBytes": len(pdf) + 99}]}
    )
    job = created.json()["job"]["name"]
    url = created.json()["uploadTargets"][0]["url"]
    assert (await client.put(url, content=pdf)).status_code == 200
    finalized = await client.post(f"/v1/{job}:finalizeUploads", headers=AUTH, json={})
    assert finalized.status_code == 200, finalized.text
    # The file is being analysed: the same URL cannot swap its bytes (a PDF for a ZIP).
    replaced = await client.put(url, content=b"PK\x03\x04" + b"\0" * 40)
    _assert_4xx(replaced, 412)


async def test_a_client_gone_mid_upload_leaves_no_traceback_and_no_file(
    settings: Settings, jobs: RunningJobsService, caplog: pytest.LogCaptureFixture
) -> None:
    # The client announces 10 bytes, sends 3 and disconnects: starlette's ClientDisconnect
    # went up as "Exception in ASGI application", a traceback in the gateway's log.
    app = create_app(settings.model_copy(update={"jobs_addr": f"127.0.0.1:{jobs.port}"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            created = await c.post(
                "/v1/jobs", headers=AUTH, json={"files": [{"path": "a.pdf", "sizeBytes": 10}]}
            )
            url = httpx.URL(created.json()["uploadTargets"][0]["url"])
            chunks: list[dict[str, object]] = [
                {"type": "http.request", "body": b"%PD", "more_body": True},
                {"type": "http.disconnect"},
            ]

            async def receive() -> dict[str, object]:
                return chunks.pop(0) if chunks else {"type": "http.disconnect"}

            sent: list[dict[str, object]] = []

            async def send(message: dict[str, object]) -> None:
                sent.append(message)

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "PUT",
                "scheme": "http",
                "path": url.path,
                "raw_path": url.raw_path.split(b"?")[0],
                "query_string": url.query,
                "root_path": "",
                "headers": [(b"host", b"gateway.test"), (b"content-length", b"10")],
                "client": ("127.0.0.1", 1),
                "server": ("gateway.test", 80),
                "state": {},
            }
            with caplog.at_level(logging.ERROR):
                await app(scope, receive, send)  # type: ignore[arg-type]
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
            # Nothing half-written stays: the same URL takes the whole file afterwards.
            assert (await c.put(url, content=b"%PDF-1.4\n\n")).status_code == 200


def test_xlsx_cells_are_never_formulas() -> None:
    import asyncio

    from openpyxl import load_workbook

    from services.jobs.domain.export.exporter import _xlsx
    from services.jobs.domain.export.rows import ExportLayout
    from services.jobs.store import models

    layout = ExportLayout(field_names=["=cmd", "b", "c", "d", "e"], money=frozenset())
    result = models.Result(values={"=cmd": "@SUM(A1)", "b": "+1", "c": "-1", "d": "\tx", "e": 5})

    async def pages() -> AsyncIterator[list[tuple[models.Result, list[str]]]]:
        yield [(result, ['=HYPERLINK("http://evil")'])]

    async def collect() -> bytes:
        return b"".join([c async for c in _xlsx(layout, pages())])

    book = load_workbook(io.BytesIO(asyncio.run(collect())))
    sheet = book["results"]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    types = [[c.data_type for c in row] for row in sheet.iter_rows()]
    assert values[0][:2] == ["file", "=cmd"]
    assert values[1][:5] == ['=HYPERLINK("http://evil")', "@SUM(A1)", "+1", "-1", "\tx"]
    assert all(t != "f" for row in types for t in row), types


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain\r\nX-Evil: 1",
        "application/" + "x" * 200,
        "pdf",
        "text/plain ",
        "é/pdf",
        "a/b; c",
    ],
)
async def test_a_declared_content_type_that_is_not_a_media_type_is_400(
    client: httpx.AsyncClient, content_type: str
) -> None:
    # The type becomes the upload's signed Content-Type. It was stored as given (a CR LF went
    # back out as a header no client can send) or cut at 200 characters (a URL signed for a
    # type nobody declared), and the job created.
    declared = {"path": "a.pdf", "sizeBytes": 3, "contentType": content_type}
    response = await client.post("/v1/jobs", headers=AUTH, json={"files": [declared]})
    _assert_4xx(response)
    assert "files[0].content_type" in response.json()["error"]["message"]
    assert (await client.get("/v1/jobs", headers=AUTH)).json().get("jobs", []) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_declared_media_types_are_taken_as_the_document_says(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    rule = document["components"]["schemas"]["bytereview.jobs.v1.DeclaredFile"]["properties"][
        "contentType"
    ]
    for content_type in (
        "",
        "application/pdf",
        'text/plain; charset="utf-8"',
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "multipart/form-data;boundary=x;",
    ):
        assert re.fullmatch(rule["pattern"].strip("^$"), content_type), content_type
        declared = {"path": "a.pdf", "sizeBytes": 3, "contentType": content_type}
        response = await client.post("/v1/jobs", headers=AUTH, json={"files": [declared]})
        assert response.status_code == 200, response.text
    assert rule["maxLength"] == 200
    assert re.fullmatch(rule["pattern"].strip("^$"), "text/plain\r\nX-Evil: 1") is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("body", [b"\x0b", b"\x0c", b" \x0b\n", b"\x1c", b"\xc2\xa0"])
async def test_a_body_of_characters_json_does_not_call_whitespace_is_400(
    client: httpx.AsyncClient, body: bytes
) -> None:
    # `bytes.strip()` took \x0b and \x0c for whitespace: such a body read as "no body", and
    # the call (here: cancelling the job) went through on bytes that are not JSON.
    job = await _job(client)
    response = await client.post(
        f"/v1/{job}:cancel", headers={**AUTH, "content-type": "application/json"}, content=body
    )
    _assert_4xx(response)
    assert "not valid JSON" in response.json()["error"]["message"]
    assert (await client.get(f"/v1/{job}", headers=AUTH)).json()["status"] == "PENDING_UPLOAD"
    # JSON's own whitespace around nothing is still an empty body.
    empty = await client.post(f"/v1/{job}:cancel", headers=AUTH, content=b" \t\r\n")
    assert empty.status_code == 200, empty.text


@pytest.mark.parametrize(
    "mode", [False, True, 1, 2.0, "2", " 2 ", "task_mode_combined", "TASK_MODE_COMBINED "]
)
async def test_an_enum_in_a_body_is_one_of_its_names(
    client: httpx.AsyncClient, mode: object
) -> None:
    # json_format took numbers and whatever int() takes: `false` was TASK_MODE_UNSPECIFIED,
    # `" 2 "` TASK_MODE_COMBINED; the document (and the query string) take names only.
    job = await _job(client)
    for body in (
        {"fields": FIELDS, "taskMode": mode},
        {"fields": FIELDS, "folderRules": [{"folder": "x", "taskMode": mode}]},
    ):
        response = await client.post(f"/v1/{job}:configure", headers=AUTH, json=body)
        _assert_4xx(response)
        assert "taskMode must be one of" in response.json()["error"]["message"].replace(
            "task_mode", "taskMode"
        )
    got = (await client.get(f"/v1/{job}", headers=AUTH)).json()
    assert "fields" not in got
    for named in ("TASK_MODE_COMBINED", None):
        body = {"fields": FIELDS, "taskMode": named}
        configured = await client.post(f"/v1/{job}:configure", headers=AUTH, json=body)
        assert configured.status_code == 200, configured.text
