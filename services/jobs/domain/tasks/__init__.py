"""Tasks: planned per file or folder, built in batches, reported back by the extract workers,
settled (cancel, retry) in batches, re-run, and reconciled with the queues."""
