"""Streaming exports of a job's results as CSV, JSON or XLSX."""
