"""The gRPC services: one package per folder (jobs, ingest, extract)."""
