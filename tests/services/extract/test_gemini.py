"""The Gemini extractor (the real google-genai SDK) against a server speaking Gemini's REST format."""

from __future__ import annotations

import asyncio
import functools
import io
import itertools
import re
import time

import pytest

from services.extract import (
    DEFAULT_TYPES,
    Document,
    ExtractionError,
    ExtractionRequest,
    Field,
    RateController,
)
from services.extract.model.gemini import (
    EVIDENCE_KEY,
    SOURCES_KEY,
    GeminiExtractor,
    max_output_tokens,
)
from services.extract.schema import normalise_all
from tests.gemini_standin import (
    API_KEY,
    Reply,
    RunningStandIn,
    bad_request,
    consumer_suspended,
    key_invalid,
    location_unsupported,
    model_not_found,
    service_disabled,
)
from tests.pdfs import text_pdf

PDF = text_pdf(["Invoice Number: A-1", "Total: 10.00"])
FIELDS = [Field("invoice_number", "text", "the invoice number"), Field("total", "currency")]


def extractor(server: RunningStandIn, key: str = API_KEY) -> GeminiExtractor:
    return GeminiExtractor(api_key=key, model="gemini-test", base_url=server.base_url)


def document(name: str = "f1", path: str = "a/one.pdf", data: bytes = PDF) -> Document:
    return Document(
        name=name,
        path=path,
        media_type="application/pdf",
        open=functools.partial(io.BytesIO, data),
    )


def request(*documents: Document, prompt: str = "") -> ExtractionRequest:
    return ExtractionRequest(
        fields=FIELDS,
        types=DEFAULT_TYPES,
        documents=list(documents) or [document()],
        system_prompt=prompt,
    )


async def test_structured_output_and_tokens(gemini: RunningStandIn) -> None:
    gemini.state.script(Reply(values={"invoice_number": "A-1", "total": "10.00"}))
    async with extractor(gemini) as ex:
        got = await ex.extract(request(prompt="You read invoices."))
    assert got.values == {"invoice_number": "A-1", "total": "10.00"}
    assert got.input_tokens == 250
    assert got.output_tokens > 0
    [seen] = gemini.state.seen
    assert seen.model == "gemini-test"
    assert seen.system_prompt == "You read invoices."
    assert seen.inline_files == [("application/pdf", PDF)]
    assert seen.config("responseMimeType") == "application/json"
    assert seen.config("temperature") == 0
    # Bounded: two fields' values at MAX_VALUE_CHARS and their quotes, and thinking room.
    assert seen.config("maxOutputTokens") == max_output_tokens(2) == 32_710
    schema = seen.schema
    assert schema["required"] == ["invoice_number", "total", EVIDENCE_KEY]
    # Money is a decimal string, so that the model can say "10.00" rather than 10.
    total = schema["properties"]["total"]
    assert total["type"] == ["string", "null"]
    assert re.fullmatch(total["pattern"], "30.90")
    assert not re.fullmatch(total["pattern"], "RM 30.90")
    assert "decimals" in total["description"]


@pytest.mark.parametrize(("ceiling", "sent"), [(8_192, 8_192), (0, None)])
async def test_the_output_bound_stays_within_the_models_ceiling(
    gemini: RunningStandIn, ceiling: int, sent: int | None
) -> None:
    """An operator's model with a lower output ceiling (Settings.gemini_max_output_tokens),
    or one whose API refuses the field (0): the bound sent is capped, or not sent."""
    gemini.state.script(Reply(values={"invoice_number": "A-1", "total": "10.00"}))
    async with GeminiExtractor(
        api_key=API_KEY,
        model="gemini-test",
        base_url=gemini.base_url,
        max_output_tokens=ceiling,
    ) as ex:
        await ex.extract(request())
    [seen] = gemini.state.seen
    assert seen.config("maxOutputTokens") == sent


@pytest.mark.parametrize(
    ("answer", "stored"),
    [
        ("30.90", "30.90"),  # the document's decimals, kept
        ("1939", "1939"),  # an amount printed without decimals stays so
        ("1,234.50", "1234.50"),  # a model that ignores the pattern still reads right
        (30.9, "30.90"),  # a model answering a number: money has two decimals
    ],
)
async def test_currency_keeps_the_decimals_the_model_read(
    gemini: RunningStandIn, answer: object, stored: str
) -> None:
    gemini.state.script(Reply(values={"invoice_number": "A-1", "total": answer}))
    async with extractor(gemini) as ex:
        got = await ex.extract(request())
    values, problems = normalise_all(got.values, FIELDS)
    assert values == {"invoice_number": "A-1", "total": stored}
    assert problems == {}


async def test_combined_mode_reports_the_source_file(gemini: RunningStandIn) -> None:
    gemini.state.script(
        Reply(
            values={
                "invoice_number": "A-1",
                "total": 10.0,
                SOURCES_KEY: {"invoice_number": "a/one.pdf", "total": "a/two.pdf"},
            }
        )
    )
    async with extractor(gemini) as ex:
        got = await ex.extract(request(document("f1", "a/one.pdf"), document("f2", "a/two.pdf")))
    assert got.values == {"invoice_number": "A-1", "total": 10.0}
    assert got.sources == {"invoice_number": "f1", "total": "f2"}
    [seen] = gemini.state.seen
    assert len(seen.inline_files) == 2
    assert SOURCES_KEY in seen.schema["required"]


@pytest.mark.parametrize(
    ("reply", "retryable", "rate_limited", "invalid_output", "unavailable"),
    [
        (Reply(status=429, retry_after=1.5), True, True, False, False),
        (Reply(status=503), True, False, False, True),
        (Reply(status=502), True, False, False, True),
        (Reply(status=500), True, False, False, False),
        (Reply(status=504), True, False, False, False),
        (Reply(status=400), False, False, False, False),
        (Reply(status=404), False, False, False, False),
        (Reply(text="{not json"), True, False, True, False),
        (Reply(text="[1, 2]"), True, False, True, False),
        (Reply(values={"total": 3}), True, False, True, False),
    ],
    ids=[
        "429",
        "503",
        "502",
        "500",
        "504",
        "400",
        "404",
        "bad-json",
        "not-object",
        "missing-field",
    ],
)
async def test_errors_are_classified(
    gemini: RunningStandIn,
    reply: Reply,
    retryable: bool,
    rate_limited: bool,
    invalid_output: bool,
    unavailable: bool,
) -> None:
    gemini.state.script(reply)
    async with extractor(gemini) as ex:
        with pytest.raises(ExtractionError) as caught:
            await ex.extract(request())
    assert caught.value.retryable is retryable
    assert caught.value.rate_limited is rate_limited
    assert caught.value.invalid_output is invalid_output
    # The service down or overloaded, not this request: waited out, never the task's fault.
    assert caught.value.unavailable is unavailable
    if rate_limited:
        assert caught.value.retry_after == 1.5  # from google.rpc.RetryInfo


async def error_for(
    gemini: RunningStandIn, reply: Reply | None = None, key: str = API_KEY
) -> ExtractionError:
    """What the extractor raises when the stand-in answers `reply` (or answers `key`)."""
    if reply is not None:
        gemini.state.script(reply)
    async with extractor(gemini, key=key) as ex:
        with pytest.raises(ExtractionError) as caught:
            await ex.extract(request())
    return caught.value


# A wait, not a failure: retried in place, no attempt used, for this setting of the platform's.
KEY_WAIT = (True, True, "credentials rejected")


async def test_a_bad_key_is_waited_out_not_failed(gemini: RunningStandIn) -> None:
    """The real answer to a bad key is a 400 (INVALID_ARGUMENT, reason API_KEY_INVALID): the
    operator's configuration, not the request, so a wait (unavailable), not a failed task."""
    error = await error_for(gemini, key="wrong")
    assert (error.retryable, error.unavailable, error.misconfigured) == KEY_WAIT
    assert str(error) == (
        "Gemini refused the platform's settings, credentials rejected (400 API_KEY_INVALID):"
        " API key not valid. Please pass a valid API key. — fix the API key secret"
    )
    assert "wrong" not in str(error)


@pytest.mark.parametrize(
    "reply",
    [
        key_invalid(),
        service_disabled(),
        consumer_suspended(API_KEY),
        Reply(status=403),  # a 403 without details: still the credentials, not the request
        Reply(status=401),  # UNAUTHENTICATED (OAuth, Vertex)
    ],
    ids=["400-API_KEY_INVALID", "403-SERVICE_DISABLED", "403-CONSUMER_SUSPENDED", "403", "401"],
)
async def test_credential_errors_are_a_wait(gemini: RunningStandIn, reply: Reply) -> None:
    error = await error_for(gemini, reply)
    assert (error.retryable, error.unavailable, error.misconfigured) == KEY_WAIT
    assert not error.rate_limited
    assert "Gemini refused the platform's settings, credentials rejected" in str(error)
    # The service quotes the key at times ("Consumer 'api_key:...' has been suspended"): the
    # error says it redacted, and holds no SDK error whose text (all its body) could show it.
    assert API_KEY not in str(error)
    assert error.__cause__ is None


async def test_a_key_in_the_services_words_is_redacted(gemini: RunningStandIn) -> None:
    assert str(await error_for(gemini, consumer_suspended(API_KEY))) == (
        "Gemini refused the platform's settings, credentials rejected (403 CONSUMER_SUSPENDED):"
        " Permission denied: Consumer 'api_key:[redacted]' has been suspended. — fix the API"
        " key secret"
    )


@pytest.mark.parametrize(
    ("reply", "refused", "fix"),
    [
        (model_not_found("gemini-test"), "model not found", "BYTEREVIEW_GEMINI_MODEL"),
        (location_unsupported(), "refused for the project's region or billing", "billing"),
    ],
    ids=["404-model", "400-FAILED_PRECONDITION"],
)
async def test_a_model_or_region_refused_is_a_wait(
    gemini: RunningStandIn, reply: Reply, refused: str, fix: str
) -> None:
    """A mistyped or retired model name, a region or billing the API does not serve: the
    operator's settings, as a bad key, so no task fails for them."""
    error = await error_for(gemini, reply)
    assert (error.retryable, error.unavailable, error.misconfigured) == (True, True, refused)
    assert fix in str(error)


async def test_a_404_not_naming_the_model_still_fails_its_task(gemini: RunningStandIn) -> None:
    error = await error_for(gemini, model_not_found("another-model"))
    assert (error.retryable, error.misconfigured) == (False, "")


@pytest.mark.parametrize(
    "reply",
    [bad_request(), bad_request("* GenerateContentRequest.generation_config: bad schema")],
    ids=["too-large", "bad-schema"],
)
async def test_a_bad_request_still_fails_its_task(gemini: RunningStandIn, reply: Reply) -> None:
    """A 400 INVALID_ARGUMENT without an ErrorInfo reason about the key is the request's own."""
    error = await error_for(gemini, reply)
    assert (error.retryable, error.unavailable, error.misconfigured) == (False, False, "")
    assert str(error).startswith("Gemini refused the request (400): ")


async def test_a_bad_key_on_the_files_api_is_a_wait(gemini: RunningStandIn) -> None:
    """A large file goes through the Files API first, which refuses a bad key the same way."""
    big = PDF + b"%" + b"0" * 20_000
    wrong = GeminiExtractor(
        api_key="wrong", model="gemini-test", base_url=gemini.base_url, inline_limit=10_000
    )
    async with wrong:
        with pytest.raises(ExtractionError) as caught:
            await wrong.extract(request(document(data=big)))
    assert caught.value.misconfigured == "credentials rejected"
    assert caught.value.unavailable
    assert gemini.state.files == {}


@pytest.mark.parametrize("text", ['{"invoice_number": "A-1", "total": "10.0', ""])
async def test_an_answer_cut_at_the_output_bound_fails_saying_so(
    gemini: RunningStandIn, text: str
) -> None:
    """Cut mid-JSON, or empty (the bound spent thinking): a clear, final task error, not an
    "invalid JSON" asked again at the same bound."""
    gemini.state.script(Reply(text=text, finish_reason="MAX_TOKENS"))
    async with extractor(gemini) as ex:
        with pytest.raises(ExtractionError) as caught:
            await ex.extract(request())
    assert not caught.value.retryable
    assert not caught.value.invalid_output
    assert str(caught.value).startswith(
        "Gemini's answer was cut at the bound of 32710 output tokens for 2 field(s)"
        " (finish reason MAX_TOKENS)"
    )


async def test_an_unreachable_api_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from google.genai import _api_client

    from launcher.up import free_port

    # On a connection error the SDK sleeps 1 + randint(0, 9) s and tries once more: its
    # random part pinned to 0, the test waits 1 s, not 1 to 10 (the third party's own
    # jitter; our handling of the error that follows is what is tested).
    pinned = random.Random()
    monkeypatch.setattr(pinned, "randint", lambda a, b: a)
    monkeypatch.setattr(_api_client, "random", pinned)
    unreachable = GeminiExtractor(
        api_key=API_KEY, model="m", base_url=f"http://127.0.0.1:{free_port()}"
    )
    async with unreachable:
        with pytest.raises(ExtractionError) as caught:
            await unreachable.extract(request())
    assert caught.value.retryable
    assert caught.value.unavailable, caught.value


async def test_rate_controller_waits_out_429s_in_place(gemini: RunningStandIn) -> None:
    gemini.state.script(
        Reply(status=429, retry_after=0.3),
        Reply(status=429, retry_after=0.3),
        Reply(values={"invoice_number": "A-1", "total": 1}),
    )
    rate = RateController(max_concurrency=8)
    started = time.monotonic()
    async with extractor(gemini) as ex:
        got = await rate.call(lambda: ex.extract(request()))
    assert got.values["invoice_number"] == "A-1"
    assert time.monotonic() - started >= 0.6  # both Retry-Afters were honoured
    assert rate.limit == 2.5  # halved twice from 8, then one success adds 1/2
    assert len(gemini.state.seen) == 3


async def test_rate_controller_gives_up_after_max_wait(gemini: RunningStandIn) -> None:
    gemini.state.default = lambda seen: Reply(status=429, retry_after=0.2)
    rate = RateController(max_concurrency=2, max_wait_seconds=0.5)
    async with extractor(gemini) as ex:
        with pytest.raises(ExtractionError) as caught:
            await rate.call(lambda: ex.extract(request()))
    assert caught.value.rate_limited
    assert 2 <= len(gemini.state.seen) <= 5


async def test_rate_controller_does_not_retry_other_errors(gemini: RunningStandIn) -> None:
    gemini.state.script(Reply(status=400))
    rate = RateController(max_concurrency=2)
    async with extractor(gemini) as ex:
        with pytest.raises(ExtractionError):
            await rate.call(lambda: ex.extract(request()))
    assert len(gemini.state.seen) == 1
    assert rate.active == 0


async def test_additive_increase_after_a_decrease() -> None:
    rate = RateController(max_concurrency=4, default_backoff_seconds=0)

    async def limited() -> None:
        raise ExtractionError("429", retryable=True, rate_limited=True, retry_after=0)

    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            await limited()
        return calls

    assert await rate.call(flaky) == 2
    assert rate.limit == pytest.approx(2 + 1 / 2)
    for _ in range(10):
        await rate.call(flaky)
    assert rate.limit == 4  # back to the ceiling, never above


async def test_concurrency_never_exceeds_the_limit() -> None:
    rate = RateController(max_concurrency=3)
    running = peak = 0

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    await asyncio.gather(*(rate.call(work) for _ in range(20)))
    assert peak == 3


async def test_requests_per_minute_are_paced() -> None:
    rate = RateController(max_concurrency=10, rpm=600)  # one start every 0.1 s
    starts: list[float] = []

    async def work() -> None:
        starts.append(time.monotonic())

    await asyncio.gather(*(rate.call(work) for _ in range(6)))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.09
    assert starts[-1] - starts[0] >= 0.45


async def test_large_files_go_through_the_files_api(gemini: RunningStandIn) -> None:
    gemini.state.script(Reply(values={"invoice_number": "A-1", "total": 10.0}))
    big = PDF + b"%" + b"0" * 20_000  # trailing bytes after %%EOF keep it a valid PDF
    small_limit = GeminiExtractor(
        api_key=API_KEY, model="gemini-test", base_url=gemini.base_url, inline_limit=10_000
    )
    async with small_limit:
        got = await small_limit.extract(request(document(data=big)))
    assert got.values["invoice_number"] == "A-1"
    [seen] = gemini.state.seen
    assert seen.inline_files == []
    [(mime, uri)] = seen.file_uris
    assert mime == "application/pdf"
    assert gemini.state.files[uri] == big  # every byte arrived through the resumable upload
