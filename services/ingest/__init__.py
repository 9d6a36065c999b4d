"""The ingest service: file analysis and safe, streaming archive unpacking."""
