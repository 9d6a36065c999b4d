"""Results: extracted values and their versions, corrections, the review queue, confidence
scoring and golden documents."""
