"""What every extractor takes and returns, and how its failures are classified."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from services.extract.schema import Field, JsonValue, TypeInfo


@dataclass(frozen=True, slots=True)
class Document:
    """One file to read. `open` returns a fresh seekable binary reader."""

    name: str
    path: str
    media_type: str
    open: Callable[[], BinaryIO]


@dataclass(frozen=True, slots=True)
class ExtractionRequest:
    fields: Sequence[Field]
    types: Mapping[str, TypeInfo]
    documents: Sequence[Document]
    system_prompt: str = ""


@dataclass(frozen=True, slots=True)
class Extraction:
    values: dict[str, JsonValue]
    # Field name -> the document (by name) its value came from; combined mode.
    sources: dict[str, str] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0


class ExtractionError(Exception):
    """A failed extraction. `retryable` decides between another attempt and a failed task."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        rate_limited: bool = False,
        invalid_output: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        # A 429 does not count against the task's attempts.
        self.rate_limited = rate_limited
        # The model answered, but not with what the schema asks: worth one more try in place.
        self.invalid_output = invalid_output


class Extractor(Protocol):
    @property
    def name(self) -> str: ...

    async def extract(self, request: ExtractionRequest) -> Extraction: ...

    async def aclose(self) -> None:
        """Release what the extractor holds (an HTTP connection pool); it is not used again."""
        ...
