"""A job's workflow as users drive it (create, upload, finalize, configure, start, cancel),
what the ingest workers report back, and watching a job."""
