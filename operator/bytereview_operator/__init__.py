"""The autoscaler (the owner's operator/ folder): scales worker pools from JetStream lag.

Importable as `bytereview_operator`, never as a top-level `operator`, which would shadow
the standard library.
"""
