"""The ingest service: file analysis and safe, streaming archive unpacking.

What other packages, the CLI, benchmarks and tests may use.
"""

from services.ingest.analysis import Analysis, analyse
from services.ingest.server import IngestServicer, ingest_server, inspect
from services.ingest.sniff import Sniffed, sniff
from services.ingest.unpack import ArchiveUnpacker, HostileArchive, Outcome, UnpackLimits
from services.ingest.worker import IngestHandler, serve

__all__ = [
    "Analysis",
    "ArchiveUnpacker",
    "HostileArchive",
    "IngestHandler",
    "IngestServicer",
    "Outcome",
    "Sniffed",
    "UnpackLimits",
    "analyse",
    "ingest_server",
    "inspect",
    "serve",
    "sniff",
]
