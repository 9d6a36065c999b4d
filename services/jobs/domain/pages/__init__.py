"""Keyset pagination: opaque page tokens and the queries that page by them."""
