"""ByteReview: turn business documents into structured data."""

__version__ = "0.1.0"
