"""Templates (reusable field sets) and their versions."""
