"""What every extractor takes and returns, and how its failures are classified."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from bytereview.values.typed import JsonValue
from services.extract.schema import Field, TypeInfo


class PageStore(Protocol):
    """Where the pages OCR read from one stored file are kept for later tasks over the same
    file (`services.extract.reading.page_store`)."""

    async def load(self) -> list[Any] | None: ...

    async def save(self, pages: list[Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class Document:
    """One file to read. `open` returns a fresh seekable binary reader."""

    name: str
    path: str
    media_type: str
    open: Callable[[], BinaryIO]
    # The pages as `services.extract.reading.pages` read them, kept for the task: the extractor
    # and the platform's quote verification read a document once.
    pages: list[Any] = field(default_factory=list, compare=False, repr=False)
    # Pages OCR read from this file in an earlier task (a re-run, a preview, another
    # template's scoring), and where this task's reading is kept: None for bytes not stored.
    readings: PageStore | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Box:
    """Where text is printed, as fractions of the page's width and height (origin top left)."""

    left: float
    top: float
    right: float
    bottom: float


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where an extractor says it read a value: the document (by name), the 1-based page
    (0 when not said), the text quoted from it, and the box when known."""

    document: str
    page: int
    quote: str
    box: Box | None = None


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
    # Field name -> where the extractor says it read the value; the platform verifies it.
    evidence: dict[str, Evidence] = field(default_factory=dict)
    # Field name -> how the extractor found the value (`label`, `layout`, `model`...), one of
    # the signals confidence is calibrated on.
    methods: dict[str, str] = field(default_factory=dict)


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
        unavailable: bool = False,
        misconfigured: str = "",
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        # A 429 does not count against the task's attempts.
        self.rate_limited = rate_limited
        # The model's service is down or overloaded (it cannot be reached, says 502/503, or
        # fails a request and a health probe alike), whatever was asked of it: a dependency
        # down, waited out in place by the worker, never counted against the task (not the
        # task's fault).
        self.unavailable = unavailable
        # What of the platform's own settings the model's service refused, or '':
        # "credentials rejected" (a wrong, expired or revoked API key, the API not enabled
        # for its project), "model not found" (a mistyped or retired model name), "refused
        # for the project's region or billing". An operator's configuration to fix, never a
        # user's task's fault. Always with `unavailable` (it is waited out the same way);
        # kept apart so the worker can say what it is waiting for.
        self.misconfigured = misconfigured
        # The model answered, but not with what the schema asks: worth one more try in place.
        self.invalid_output = invalid_output


class Extractor(Protocol):
    @property
    def name(self) -> str: ...

    async def extract(self, request: ExtractionRequest) -> Extraction: ...

    async def aclose(self) -> None:
        """Release what the extractor holds (an HTTP connection pool); it is not used again."""
        ...
