"""Calling a hosted model: the Gemini client, the request quota every replica shares, and
the rate controller that keeps each replica's calls inside it."""
