"""A 500, 504, 408 or timeout is the request's own failure or the service down: the Gemini
extractor (the real google-genai SDK, against the stand-in's REST wire format) asks the
service a known-good question to tell which (services/extract/model/health.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client import REGISTRY

from services.extract import ExtractionError, RateController
from services.extract.model.gemini import GeminiExtractor
from services.extract.model.health import ModelHealth
from services.extract.model.quota import SharedQuota, quota_key
from tests.gemini_standin import API_KEY, Reply, RunningStandIn, Seen
from tests.servers import NatsServer
from tests.services.extract.test_gemini import PDF, document, error_for, extractor
from tests.services.extract.test_gemini import request as extraction_request

# A wait, not a failure: retried in place, no attempt used; no setting named, so the job
# page says the service is not answering.
OUTAGE_WAIT = (True, True, "")
# The request's own: retryable, counted against the task's attempts, as before.
COUNTED = (True, False, "")
MARK = b"%POISONED"  # a PDF comment: the document stays valid
POISONED = document(data=PDF + MARK)
ANSWER = {"invoice_number": "A-1", "total": "10.00"}
DOUBTFUL = [Reply(status=500), Reply(status=504), Reply(status=408)]
IDS = ["500", "504", "408"]


def classes(error: ExtractionError) -> tuple[bool, bool, str]:
    return (error.retryable, error.unavailable, error.misconfigured)


@pytest.mark.parametrize("reply", DOUBTFUL, ids=IDS)
async def test_the_service_failing_every_request_is_a_wait(
    gemini: RunningStandIn, reply: Reply
) -> None:
    gemini.state.outage = reply
    error = await error_for(gemini)
    assert classes(error) == OUTAGE_WAIT
    assert str(error).startswith(f"Gemini error {reply.status}: ")
    assert "a health probe failed too" in str(error)
    [probe] = gemini.state.probes
    assert probe.documents == []
    assert list(probe.schema["properties"]) == ["ok"]  # a one-line question
    assert len(gemini.state.seen) == 1


@pytest.mark.parametrize("reply", DOUBTFUL, ids=IDS)
async def test_a_request_failing_alone_still_counts_against_its_task(
    gemini: RunningStandIn, reply: Reply
) -> None:
    """The service fails only the request reading the poisoned document; it answers the
    probe, so the failure is the request's own."""
    gemini.state.default = lambda seen: reply if seen.reads(MARK) else Reply(values=ANSWER)
    async with extractor(gemini) as ex:
        assert (await ex.extract(extraction_request())).values == ANSWER  # the others are answered
        with pytest.raises(ExtractionError) as caught:
            await ex.extract(extraction_request(POISONED))
    assert classes(caught.value) == COUNTED
    assert str(caught.value).startswith(f"Gemini error {reply.status}: ")
    assert len(gemini.state.probes) == 1


def slow(timeout: float, server: RunningStandIn) -> GeminiExtractor:
    return GeminiExtractor(
        api_key=API_KEY, model="gemini-test", base_url=server.base_url, timeout_seconds=timeout
    )


async def test_a_stalled_service_is_a_wait(gemini: RunningStandIn) -> None:
    """Every request, the probe too, is answered after the client's timeout."""
    gemini.state.outage = Reply(values=ANSWER, delay=3)
    async with slow(0.5, gemini) as ex:
        with pytest.raises(ExtractionError) as caught:
            await ex.extract(extraction_request())
    assert classes(caught.value) == OUTAGE_WAIT
    assert "too slow" in str(caught.value)
    assert len(gemini.state.probes) == 1


async def test_a_request_the_model_works_on_too_long_still_counts(gemini: RunningStandIn) -> None:
    def answers(seen: Seen) -> Reply:
        return Reply(values=ANSWER, delay=3 if seen.reads(MARK) else 0)

    gemini.state.default = answers
    async with slow(0.5, gemini) as ex:
        with pytest.raises(ExtractionError) as caught:
            await ex.extract(extraction_request(POISONED))
    assert classes(caught.value) == COUNTED
    assert str(caught.value).startswith("Gemini unreachable or too slow: ")
    assert len(gemini.state.probes) == 1


@pytest.mark.parametrize("down", [True, False], ids=["outage", "poisoned"])
async def test_concurrent_failures_share_one_probe(gemini: RunningStandIn, down: bool) -> None:
    """Eight tasks meeting the same outage (or each its own failure) in one worker cost one
    probe: the failures that come while it runs await its verdict, later ones reuse it."""
    if down:
        gemini.state.outage = Reply(status=500)
    else:
        gemini.state.default = lambda seen: Reply(status=500)

    async def failed(ex: GeminiExtractor) -> ExtractionError:
        with pytest.raises(ExtractionError) as caught:
            await ex.extract(extraction_request())
        return caught.value

    verdict = {"verdict": "down" if down else "answered"}
    before = REGISTRY.get_sample_value("bytereview_extract_model_probes_total", verdict) or 0
    async with extractor(gemini) as ex:
        errors = await asyncio.gather(*(failed(ex) for _ in range(8)))
        assert {classes(e) for e in errors} == {OUTAGE_WAIT if down else COUNTED}
        assert len(gemini.state.seen) == 8
        assert len(gemini.state.probes) == 1
        # Remembered a few seconds: a failure just after is judged without a probe.
        await failed(ex)
        assert len(gemini.state.probes) == 1
    # Counted for operators, by verdict.
    assert REGISTRY.get_sample_value("bytereview_extract_model_probes_total", verdict) == before + 1


async def test_a_rate_limited_probe_is_a_rate_limit(gemini: RunningStandIn) -> None:
    """The request's 500 leaves the quota spent and the probe is refused for it (429): the
    service up, and the request would meet the same limit. Neither an outage nor the
    request's failure: the rate controller waits it out in place, as any 429."""
    gemini.state.quota_rpm = 1
    gemini.state.script(Reply(status=500))
    error = await error_for(gemini)
    assert (error.retryable, error.unavailable, error.rate_limited) == (True, False, True)
    assert error.retry_after is not None
    assert error.retry_after > 50  # the rest of the quota's minute
    assert gemini.state.rejected == 1  # the probe
    assert gemini.state.probes == []


@pytest.mark.parametrize("shared", [False, True], ids=["worker", "pool"])
async def test_the_probe_takes_its_start_from_the_rpm_budget(
    gemini: RunningStandIn, request: pytest.FixtureRequest, shared: bool
) -> None:
    """A request spends the quota whatever it asks: the probe waits its turn in the
    requests-per-minute schedule as the request before it did, the worker's own or the
    pool's (the shared schedule in NATS KV)."""
    quota = None
    if shared:
        nats: NatsServer = request.getfixturevalue("nats")
        quota = SharedQuota(nats_url=nats.url, rpm=120, key=quota_key(uuid.uuid4().hex))
    rate = RateController(max_concurrency=4, rpm=120, shared=quota)  # a start every 0.5 s
    gemini.state.outage = Reply(status=500)
    ex = GeminiExtractor(
        api_key=API_KEY, model="gemini-test", base_url=gemini.base_url, pace=rate.paced
    )
    try:
        async with ex:
            with pytest.raises(ExtractionError):
                await rate.call(lambda: ex.extract(extraction_request()))
    finally:
        if quota is not None:
            await quota.aclose()
    [seen], [probe] = gemini.state.seen, gemini.state.probes
    # Less the request's own way to the stand-in (its PDF, a first connection): not 0.5.
    assert probe.at - seen.at >= 0.4


class Probe:
    """What the service answers the probe, in order (None: answered); counts the probes."""

    def __init__(self, *answers: ExtractionError | None) -> None:
        self.answers = list(answers)
        self.made = 0

    async def __call__(self) -> None:
        self.made += 1
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer


FAILED = ExtractionError("Gemini error 500: internal", retryable=True)
REFUSED = ExtractionError(
    "Gemini refused the platform's settings, credentials rejected",
    retryable=True,
    unavailable=True,
    misconfigured="credentials rejected",
)


async def test_a_probe_refusing_the_settings_is_that_refusal() -> None:
    """A key revoked meanwhile: the request would be refused as the probe was, and the worker
    waits on it saying so (not 'not answering')."""
    health = ModelHealth(Probe(REFUSED), what="gemini:m")
    assert await health.judged(FAILED) is REFUSED


@pytest.mark.parametrize(
    "odd",
    [
        ExtractionError("Gemini refused the request (400): bad schema", retryable=False),
        ValueError("the SDK could not read the answer"),
    ],
    ids=["400", "unexpected"],
)
async def test_a_probe_refused_as_a_bad_request_is_an_answer(
    caplog: pytest.LogCaptureFixture, odd: Exception
) -> None:
    """A 400 the probe cannot deserve, or a failure the extractor does not know: no sign of
    an outage, so the failure counts as before probes; a warning says the probe was refused
    (a bug of the probe, to be seen)."""

    async def probe() -> None:
        raise odd

    health = ModelHealth(probe, what="gemini:m")
    assert await health.judged(FAILED) is FAILED
    assert "the health probe was refused" in caplog.text


async def test_a_verdict_stands_for_its_time_then_the_service_is_asked_again() -> None:
    now = [0.0]
    probe = Probe(FAILED, None)
    health = ModelHealth(probe, what="gemini:m", remember_seconds=10, clock=lambda: now[0])
    assert (await health.judged(FAILED)).unavailable
    now[0] = 9.9
    assert (await health.judged(FAILED)).unavailable
    assert probe.made == 1
    now[0] = 10.0  # the service is back
    assert await health.judged(FAILED) is FAILED
    assert probe.made == 2


async def test_a_request_sent_before_the_service_came_back_is_the_outages() -> None:
    """A request stalled by an outage times out once the service is back, and the probe then
    answers: still the outage's failure (counted, it would use an attempt of every task in
    flight when an outage ends). A request sent after the service was seen back counts."""
    now = [0.0]
    probe = Probe(FAILED, None, None)
    health = ModelHealth(probe, what="gemini:m", remember_seconds=10, clock=lambda: now[0])
    assert (await health.judged(FAILED, started=0.0)).unavailable  # down
    stalled_since = 5.0
    now[0] = 20.0  # the probe answers again
    waited = await health.judged(FAILED, started=stalled_since)
    assert waited.unavailable
    assert waited.retryable
    assert "sent before the service answered again" in str(waited)
    assert probe.made == 2
    now[0] = 21.0
    assert await health.judged(FAILED, started=20.5) is FAILED  # sent after: its own
    assert probe.made == 2  # the verdict still stands


async def test_a_request_sent_while_the_probe_waited_for_its_start_is_the_outages() -> None:
    """The probe waits for its start in the requests-per-minute budget (here from 20 s to
    50 s); a request sent meanwhile (at 40 s), the service still down, failing after the
    service is back is the outage's: the service was seen back only when the probe went."""
    now = [0.0]

    async def pace() -> None:
        now[0] = 50.0

    probe = Probe(FAILED, None)
    health = ModelHealth(probe, what="gemini:m", pace=pace, clock=lambda: now[0])
    assert (await health.judged(FAILED, started=0.0)).unavailable  # down, probed at 50
    now[0] = 70.0  # past the verdict's 10 s
    assert (await health.judged(FAILED, started=40.0)).unavailable
    assert probe.made == 2


async def test_no_start_for_the_probe_is_no_verdict() -> None:
    """The shared budget's turn waits out NATS in place: a probe that gets no start within
    its bound gives no verdict (the request's failure counts, as before probes) and holds
    the lock no longer."""
    never = asyncio.Event()

    async def pace() -> None:
        await never.wait()

    probe = Probe()
    health = ModelHealth(probe, what="gemini:m", pace=pace, pace_seconds=0.1)
    assert await health.judged(FAILED, started=0.0) is FAILED
    assert await health.judged(FAILED, started=0.0) is FAILED  # nothing remembered
    assert probe.made == 0
