"""The Gemini extractor, through google-genai with structured (JSON schema) output."""

from __future__ import annotations

import json
from io import IOBase
from typing import Any, cast

from bytereview.services.extract.base import (
    Document,
    Extraction,
    ExtractionError,
    ExtractionRequest,
)
from bytereview.services.extract.schema import json_schema

INLINE_LIMIT = 15 * 1024 * 1024  # larger files go through the Files API


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class GeminiExtractor:
    def __init__(
        self, *, api_key: str, model: str, base_url: str = "", timeout_seconds: float = 120
    ) -> None:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(timeout=int(timeout_seconds * 1000))
        if base_url:
            options.base_url = base_url
        self._client = genai.Client(api_key=api_key, http_options=options)
        self._types = types
        self._model = model
        self.name = f"gemini:{model}"

    async def _part(self, document: Document) -> Any:
        types = self._types
        with document.open() as handle:
            data = handle.read(INLINE_LIMIT + 1)
        if len(data) <= INLINE_LIMIT:
            return types.Part.from_bytes(data=data, mime_type=document.media_type)
        with document.open() as handle:
            uploaded = await self._client.aio.files.upload(
                file=cast(IOBase, handle),
                config=types.UploadFileConfig(mime_type=document.media_type),
            )
        return types.Part.from_uri(file_uri=uploaded.uri or "", mime_type=document.media_type)

    async def extract(self, request: ExtractionRequest) -> Extraction:
        from google.genai import errors

        types = self._types
        schema = json_schema(request.fields, request.types)
        parts: list[Any] = []
        for index, document in enumerate(request.documents):
            parts.append(types.Part.from_text(text=f"File {index + 1}: {document.path}"))
            parts.append(await self._part(document))
        combined = len(request.documents) > 1
        ask = "Extract the fields described by the response schema."
        if combined:
            ask += " The files belong together; give one value per field across all of them."
        parts.append(types.Part.from_text(text=ask))
        config = types.GenerateContentConfig(
            system_instruction=request.system_prompt or None,
            response_mime_type="application/json",
            response_json_schema=schema,
            temperature=0,
        )
        try:
            response = await self._client.aio.models.generate_content(
                model=self._model, contents=[types.Content(role="user", parts=parts)], config=config
            )
        except errors.APIError as exc:
            code = int(exc.code or 0)
            if code == 429:
                raise ExtractionError(
                    f"Gemini rate limit: {exc.message}",
                    retryable=True,
                    retry_after=_retry_after(exc),
                    rate_limited=True,
                ) from exc
            if code >= 500 or code in (408,):
                raise ExtractionError(
                    f"Gemini error {code}: {exc.message}",
                    retryable=True,
                    retry_after=_retry_after(exc),
                ) from exc
            raise ExtractionError(
                f"Gemini refused the request ({code}): {exc.message}", retryable=False
            ) from exc
        except TimeoutError as exc:
            raise ExtractionError("Gemini timed out", retryable=True) from exc
        try:
            values = json.loads(response.text or "")
        except json.JSONDecodeError as exc:
            raise ExtractionError(f"Gemini returned invalid JSON: {exc}", retryable=True) from exc
        if not isinstance(values, dict):
            raise ExtractionError("Gemini returned JSON that is not an object", retryable=True)
        usage = response.usage_metadata
        return Extraction(
            values=values,
            input_tokens=int(getattr(usage, "prompt_token_count", 0) or 0),
            output_tokens=int(getattr(usage, "candidates_token_count", 0) or 0),
        )
