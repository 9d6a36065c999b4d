"""The Gemini extractor, through google-genai with structured (JSON schema) output."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Sequence
from io import IOBase
from typing import Any, Self, TypeVar, cast

import aiohttp
import httpx

from bytereview.core.limits import MAX_VALUE_CHARS
from services.extract.base import (
    Document,
    Evidence,
    Extraction,
    ExtractionError,
    ExtractionRequest,
)
from services.extract.model.health import ModelHealth
from services.extract.model.refused_settings import redacted
from services.extract.schema import Field, json_schema

T = TypeVar("T")
INLINE_LIMIT = 15 * 1024 * 1024  # larger files go through the Files API
QUOTE_CHARS = 2000  # of an evidence quote kept (_evidence)
SOURCES_KEY = "_source_files"  # combined mode: field name -> path of the file it came from
EVIDENCE_KEY = "_evidence"  # field name -> {page, quote}: where the model read the value
EVIDENCE_ASK = (
    f" In {EVIDENCE_KEY}, for each field give the 1-based page and the exact text of the"
    " document the value was read from, copied as printed (null when the field is empty)."
)


def _with_evidence(schema: dict[str, Any], fields: Sequence[Field]) -> dict[str, Any]:
    cited = {
        "type": ["object", "null"],
        "properties": {
            "page": {"type": ["integer", "null"]},
            "quote": {"type": ["string", "null"]},
        },
        "required": ["page", "quote"],
    }
    evidence = {
        "type": "object",
        "description": "For each field, where in the document its value is printed.",
        "properties": {f.name: cited for f in fields},
    }
    return {
        **schema,
        "properties": {**schema["properties"], EVIDENCE_KEY: evidence},
        "required": [*schema["required"], EVIDENCE_KEY],
    }


def _evidence(
    raw: Any, sources: dict[str, str], documents: Sequence[Document]
) -> dict[str, Evidence]:
    """The model's citations; it is checked by the platform, not trusted. A missing or
    malformed citation is no citation (the value stays unverified), not a failed task."""
    if not isinstance(raw, dict) or not documents:
        return {}
    out = {}
    for name, cited in raw.items():
        if not isinstance(cited, dict) or not isinstance(cited.get("quote"), str):
            continue
        page = cited.get("page")
        out[name] = Evidence(
            document=sources.get(name, documents[0].name if len(documents) == 1 else ""),
            page=page if isinstance(page, int) and not isinstance(page, bool) else 0,
            quote=cited["quote"][:QUOTE_CHARS],
        )
    return out


def _with_sources(schema: dict[str, Any], fields: Sequence[Field]) -> dict[str, Any]:
    sources = {
        "type": "object",
        "description": "For each field, the path of the file its value was read from.",
        "properties": {f.name: {"type": ["string", "null"]} for f in fields},
    }
    return {
        **schema,
        "properties": {**schema["properties"], SOURCES_KEY: sources},
        "required": [*schema["required"], SOURCES_KEY],
    }


def _sources(raw: Any, documents: Sequence[Document]) -> dict[str, str]:
    """The model's file paths mapped back to document names; unknown paths are dropped."""
    by_path = {d.path: d.name for d in documents}
    if not isinstance(raw, dict):
        return {}
    return {k: by_path[v] for k, v in raw.items() if isinstance(v, str) and v in by_path}


# The service down or overloaded, whatever the request (502 from its front end, 503
# UNAVAILABLE "the model is overloaded", for minutes at busy times): waited out, never a
# task's failure. 500, 504 and 408 (and a timeout, or a connection cut mid-answer) may be
# the request's own doing (a document the model fails on, or works on too long), or the
# service down: the extractor asks the service a tiny known-good question
# (model/health.py) and the failure counts against its task only if that is answered;
# otherwise it is waited out too. A connection refused (no route, DNS) is the service's
# whatever the request: waited out without asking.
UNAVAILABLE_CODES = (502, 503)
# The probe's own timeout (at most the requests' own): a one-line question answered in
# well under a second by a service that is up.
PROBE_TIMEOUT_SECONDS = 30.0
PROBE_ASK = 'Answer with the JSON object {"ok": true}.'
PROBE_OUTPUT_TOKENS = 1024  # room for a thinking model's few thoughts; a cut answer is one
PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
}
# The service refusing the platform's own credentials, whatever the request: an operator's
# configuration to fix (rotate the key, enable the API or billing for its project), which
# no user can, and which would otherwise fail every task permanently. 401 UNAUTHENTICATED
# (OAuth, Vertex) and 403 PERMISSION_DENIED (the key lacks permission, the API is disabled
# for its project, the project is suspended: ErrorInfo reasons SERVICE_DISABLED,
# API_KEY_SERVICE_BLOCKED, CONSUMER_SUSPENDED...) whatever their reason; and a 400 only with
# an ErrorInfo reason about the key (API_KEY_INVALID, said for a key not valid, expired or
# not found): a 400 without one is the request's own (a schema refused, a document too
# large) and fails its task as before.
CREDENTIAL_CODES = (401, 403)
KEY_REASON_PREFIX = "API_KEY_"
# Output tokens a request may use. Without a bound a model stuck repeating itself writes on
# to its own ceiling (65,536 tokens on gemini-2.5-*): minutes and money for an answer the
# platform throws away, since a value past MAX_VALUE_CHARS is set to null anyway
# (services/extract/bounds.py). Each field of the task gets room for a value at that bound,
# its evidence quote (QUOTE_CHARS) and its keys, at 3 characters a token (English text runs
# ~4; digits, JSON escapes and non-Latin text fewer), and the request room for the model's
# thinking, which counts against the same bound on thinking models (gemini-2.5-flash thinks
# up to 24,576 tokens); all within the models' ceiling. One field: 28,643 tokens; ten:
# 65,246; more: the ceiling. An answer cut there fails its task saying so (MAX_TOKENS).
OUTPUT_TOKEN_CEILING = 65_536
THINKING_TOKENS = 24_576
FIELD_TOKENS = math.ceil((MAX_VALUE_CHARS + QUOTE_CHARS + 200) / 3)


def max_output_tokens(fields: int, ceiling: int = OUTPUT_TOKEN_CEILING) -> int | None:
    """The output bound of a request for `fields` fields, within the model's `ceiling`
    (Settings.gemini_max_output_tokens); None (no bound sent) for a ceiling of 0."""
    if ceiling <= 0:
        return None
    return min(ceiling, THINKING_TOKENS + max(fields, 1) * FIELD_TOKENS)


def _error_details(exc: Any) -> list[dict[str, Any]]:
    """The error's `details` (google.rpc messages: ErrorInfo, RetryInfo...) from its body."""
    details = getattr(exc, "details", None)
    error = details.get("error", details) if isinstance(details, dict) else {}
    found = error.get("details", []) if isinstance(error, dict) else []
    return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []


def _reasons(exc: Any) -> list[str]:
    """The google.rpc.ErrorInfo reasons of an error (`API_KEY_INVALID`, `SERVICE_DISABLED`)."""
    return [
        d["reason"]
        for d in _error_details(exc)
        if str(d.get("@type", "")).endswith("google.rpc.ErrorInfo")
        and isinstance(d.get("reason"), str)
    ]


# What of the platform's settings each refusal names, and what the operator should fix.
CREDENTIALS = "credentials rejected"
MODEL_MISSING = "model not found"
REGION_OR_BILLING = "refused for the project's region or billing"
FIXES = {
    CREDENTIALS: "fix the API key secret",
    MODEL_MISSING: "set BYTEREVIEW_GEMINI_MODEL to a model the API serves",
    REGION_OR_BILLING: "enable billing for the key's project, or call from a supported region",
}


def misconfigured(code: int, exc: Any, message: str, model: str) -> str:
    """What of the platform's own settings the service refused rather than the request, or
    '': the credentials (CREDENTIAL_CODES, or a 400 with a reason about the key); the model
    (a 404 naming it: mistyped, or retired by Google, "models/x is not found for API version
    v1beta"; the request's only other resources are files this worker just uploaded); the
    project's region or billing (400 FAILED_PRECONDITION: "User location is not supported
    for the API use", a free tier not available in the country). A request's own faults are
    INVALID_ARGUMENT, and fail its task as before."""
    if code in CREDENTIAL_CODES:
        return CREDENTIALS
    if code == 400 and any(r.startswith(KEY_REASON_PREFIX) for r in _reasons(exc)):
        return CREDENTIALS
    if code == 404 and model and model in message:
        return MODEL_MISSING
    if code == 400 and str(getattr(exc, "status", "") or "") == "FAILED_PRECONDITION":
        return REGION_OR_BILLING
    return ""


def _retry_after(exc: Any) -> float | None:
    """The server's wait: google.rpc.RetryInfo in the error details, else Retry-After."""
    for detail in _error_details(exc):
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return float(delay[:-1])
            except ValueError:
                pass
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the default backoff applies


def _failed_call(exc: BaseException, timeout: float) -> str:
    """A transport failure in words: a timeout's own text is empty (aiohttp's, asyncio's)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"TimeoutError: no answer within {timeout:g} s"
    return f"{type(exc).__name__}: {exc}"


def _doubtful(code: int) -> bool:
    """A failure that is the request's or the service's, as the health probe tells: 500
    INTERNAL, 504 DEADLINE_EXCEEDED, 408 and any other 5xx but 502/503."""
    return (code >= 500 and code not in UNAVAILABLE_CODES) or code == 408


def _api_error(exc: Any, key: str, model: str) -> ExtractionError:
    """An error the API answered, classified: whose it is, and whether it is worth waiting."""
    code = int(exc.code or 0)
    # The service's own words, as said to users (task errors) and logs: never the key,
    # which it quotes at times ("Consumer 'api_key:...' has been suspended").
    message = redacted(str(exc.message or exc.status or ""), key)
    refused = misconfigured(code, exc, message, model)
    if refused:
        reasons = ", ".join(_reasons(exc)) or exc.status or "no reason given"
        return ExtractionError(
            f"Gemini refused the platform's settings, {refused} ({code} {reasons}): {message}"
            f" — {FIXES[refused]}",
            retryable=True,
            unavailable=True,
            misconfigured=refused,
        )
    if code == 429:
        return ExtractionError(
            f"Gemini rate limit: {message}",
            retryable=True,
            retry_after=_retry_after(exc),
            rate_limited=True,
        )
    if code in UNAVAILABLE_CODES:
        return ExtractionError(
            f"Gemini unavailable ({code}): {message}",
            retryable=True,
            retry_after=_retry_after(exc),
            unavailable=True,
        )
    if _doubtful(code):
        return ExtractionError(
            f"Gemini error {code}: {message}", retryable=True, retry_after=_retry_after(exc)
        )
    return ExtractionError(f"Gemini refused the request ({code}): {message}", retryable=False)


def _too_deep() -> ExtractionError:
    return ExtractionError(
        "Gemini returned JSON nested too deeply to read", retryable=True, invalid_output=True
    )


def _parse_object(text: str, names: list[str]) -> dict[str, Any]:
    """The model's JSON answer; anything that is not an object with every field is invalid."""
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExtractionError(
            f"Gemini returned invalid JSON: {exc}", retryable=True, invalid_output=True
        ) from exc
    except RecursionError as exc:
        # Arrays or objects inside one another past Python's recursion limit (~1,000): no
        # field's value, and an internal error (retried to MaxDeliver) if let through.
        raise _too_deep() from exc
    if not isinstance(values, dict):
        raise ExtractionError(
            "Gemini returned JSON that is not an object", retryable=True, invalid_output=True
        )
    missing = [name for name in names if name not in values]
    if missing:
        raise ExtractionError(
            f"Gemini's answer lacks the field(s) {', '.join(missing)}",
            retryable=True,
            invalid_output=True,
        )
    return values


def _check_finished(response: Any, bound: int, fields: int) -> None:
    """A task error for an answer cut at the output bound (finish reason MAX_TOKENS): its
    JSON is cut too (or empty, the bound spent thinking), and asking again at temperature 0
    would pay for the same cut answer, so the task fails at once saying why."""
    candidates = getattr(response, "candidates", None) or []
    reason = getattr(candidates[0], "finish_reason", None) if candidates else None
    if str(getattr(reason, "value", reason)) == "MAX_TOKENS":
        where = f"the bound of {bound} output tokens" if bound else "the model's output ceiling"
        raise ExtractionError(
            f"Gemini's answer was cut at {where} for {fields} field(s) (finish reason"
            " MAX_TOKENS): the document or the fields ask for more text than one answer may"
            " hold",
            retryable=False,
        )


class GeminiExtractor:
    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str = "",
        timeout_seconds: float = 120,
        inline_limit: int = INLINE_LIMIT,
        max_output_tokens: int = OUTPUT_TOKEN_CEILING,
        pace: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """`pace`: waits for a start within the requests-per-minute budget, for the health
        probe (RateController.paced): the extractor's own requests take theirs from the
        caller's RateController.call."""
        from google import genai
        from google.genai import types

        options = types.HttpOptions(timeout=int(timeout_seconds * 1000))
        if base_url:
            options.base_url = base_url
        self._client = genai.Client(api_key=api_key, http_options=options)
        self._api_key = api_key  # only to keep it out of error messages
        self._types = types
        self._model = model
        self._inline_limit = inline_limit
        self._output_ceiling = max_output_tokens
        self._timeout = timeout_seconds
        self._probe_timeout = min(PROBE_TIMEOUT_SECONDS, timeout_seconds)
        self.name = f"gemini:{model}"
        # One per extractor, so one per worker process: every handler shares its verdict.
        self.health = ModelHealth(self._probe, what=self.name, pace=pace)

    async def aclose(self) -> None:
        """Close the SDK's connection pool (its sockets otherwise linger until collected)."""
        await self._client.aio.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _part(self, document: Document) -> Any:
        types = self._types
        with document.open() as handle:
            data = handle.read(self._inline_limit + 1)
        if len(data) <= self._inline_limit:
            return types.Part.from_bytes(data=data, mime_type=document.media_type)
        with document.open() as handle:
            # The Files API refuses a bad key, and fails, as generateContent does: the same
            # classes.
            uploaded = await self._request(
                lambda: self._client.aio.files.upload(
                    file=cast(IOBase, handle),
                    config=types.UploadFileConfig(mime_type=document.media_type),
                )
            )
        return types.Part.from_uri(file_uri=uploaded.uri or "", mime_type=document.media_type)

    async def _request(self, send: Callable[[], Awaitable[T]]) -> T:
        """`send()`, a request to the service, with its failures classified; one that may be
        the request's own or the service down (_doubtful, a timeout, a connection cut) is
        judged by the health probe (model/health.py)."""
        from google.genai import errors

        started = self.health.now()
        try:
            return await send()
        except errors.APIError as exc:
            error = _api_error(exc, self._api_key, self._model)
            if _doubtful(int(exc.code or 0)):
                error = await self.health.judged(error, started)
            # Not chained to a refusal of the settings: the SDK's error prints its whole body,
            # whose DebugInfo may hold the key (its ErrorInfo reasons are in the message).
            raise error from (None if error.misconfigured else exc)
        except (aiohttp.ClientConnectorError, httpx.ConnectError) as exc:
            # No connection at all (refused, no route, DNS): the service, not this request.
            raise ExtractionError(
                f"Gemini unreachable: {type(exc).__name__}: {exc}", retryable=True, unavailable=True
            ) from exc
        except (TimeoutError, aiohttp.ClientError, httpx.TransportError) as exc:
            # Too slow, or cut off mid-answer: this request's doing (a document the model
            # works on for too long) if the service answers the probe, else the service down.
            error = await self.health.judged(
                ExtractionError(
                    f"Gemini unreachable or too slow: {_failed_call(exc, self._timeout)}",
                    retryable=True,
                ),
                started,
            )
            raise error from (None if error.misconfigured else exc)

    async def _probe(self) -> None:
        """Ask the service a one-line question with a trivial schema, no documents, through
        the same client and settings as the requests; returns once it answers (whatever it
        says: an answer is what is asked), or raises its failure classified as a request's
        is. Not judged itself (that is what it is for)."""
        from google.genai import errors

        types = self._types
        config = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema=PROBE_SCHEMA,
            temperature=0,
            max_output_tokens=min(PROBE_OUTPUT_TOKENS, self._output_ceiling) or None,
            http_options=types.HttpOptions(timeout=int(self._probe_timeout * 1000)),
        )
        try:
            await self._client.aio.models.generate_content(
                model=self._model, contents=PROBE_ASK, config=config
            )
        except errors.APIError as exc:
            raise _api_error(exc, self._api_key, self._model) from None
        except (TimeoutError, aiohttp.ClientError, httpx.TransportError) as exc:
            # Refused, timed out or cut: the service, since the question is not to blame.
            raise ExtractionError(
                f"Gemini unreachable or too slow: {_failed_call(exc, self._probe_timeout)}",
                retryable=True,
                unavailable=True,
            ) from None

    async def extract(self, request: ExtractionRequest) -> Extraction:
        types = self._types
        schema = json_schema(request.fields, request.types)
        parts: list[Any] = []
        for index, document in enumerate(request.documents):
            parts.append(types.Part.from_text(text=f"File {index + 1}: {document.path}"))
            parts.append(await self._part(document))
        combined = len(request.documents) > 1
        ask = "Extract the fields described by the response schema." + EVIDENCE_ASK
        schema = _with_evidence(schema, request.fields)
        if combined:
            ask += (
                " The files belong together; give one value per field across all of them,"
                f" and in {SOURCES_KEY} the path of the file each value came from."
            )
            schema = _with_sources(schema, request.fields)
        parts.append(types.Part.from_text(text=ask))
        config = types.GenerateContentConfig(
            system_instruction=request.system_prompt or None,
            response_mime_type="application/json",
            response_json_schema=schema,
            temperature=0,
            max_output_tokens=max_output_tokens(len(request.fields), self._output_ceiling),
        )
        try:
            response = await self._request(
                lambda: self._client.aio.models.generate_content(
                    model=self._model,
                    contents=[types.Content(role="user", parts=parts)],
                    config=config,
                )
            )
        except RecursionError as exc:
            # The SDK parses a JSON answer itself (`response.parsed`): arrays or objects inside
            # one another past Python's recursion limit (~1,000) fail it there. Off-schema
            # output, not an internal error retried to MaxDeliver (_parse_object: the same).
            raise _too_deep() from exc
        _check_finished(response, config.max_output_tokens or 0, len(request.fields))
        values = _parse_object(response.text or "", [f.name for f in request.fields])
        sources = _sources(values.pop(SOURCES_KEY, None), request.documents) if combined else {}
        evidence = _evidence(values.pop(EVIDENCE_KEY, None), sources, request.documents)
        usage = response.usage_metadata
        return Extraction(
            values=values,
            sources=sources,
            evidence=evidence,
            methods=dict.fromkeys(values, "model"),
            input_tokens=int(getattr(usage, "prompt_token_count", 0) or 0),
            output_tokens=int(getattr(usage, "candidates_token_count", 0) or 0),
        )
