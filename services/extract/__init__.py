"""The extract service: AI extraction workers (Gemini or offline) and the Preview RPC.

What other packages, the CLI, benchmarks and tests may use. `GeminiExtractor` stays in
`services.extract.model.gemini`, imported only when a Gemini key is configured: google-genai is a
heavy import that the offline default never needs.
"""

from bytereview.values.typed import JsonValue
from services.extract.base import (
    Document,
    Extraction,
    ExtractionError,
    ExtractionRequest,
    Extractor,
)
from services.extract.documents import documents
from services.extract.model.ratecontrol import RateController
from services.extract.offline.extractor import OfflineExtractor
from services.extract.schema import DEFAULT_TYPES, Field, TypeInfo
from services.extract.server import ExtractServicer, extract_server
from services.extract.worker import ExtractHandler, make_extractor, rate_controller, serve

__all__ = [
    "DEFAULT_TYPES",
    "Document",
    "ExtractHandler",
    "ExtractServicer",
    "Extraction",
    "ExtractionError",
    "ExtractionRequest",
    "Extractor",
    "Field",
    "JsonValue",
    "OfflineExtractor",
    "RateController",
    "TypeInfo",
    "documents",
    "extract_server",
    "make_extractor",
    "rate_controller",
    "serve",
]
