"""The REST gateway: FastAPI routes transcoded from the protos' google.api.http annotations."""

from gateway.app import create_app

__all__ = ["create_app"]
