"""The REST gateway: FastAPI routes transcoded from the protos' google.api.http annotations.

What others may use: `create_app` (the ASGI app), `serve` (run it under uvicorn), the route
table of the public APIs and the request mapping (tests and tools), the OpenAPI document.
"""

from gateway.app import create_app
from gateway.errors import HTTP_STATUS, error_response
from gateway.openapi import openapi_document
from gateway.proxy import TranscodingProxy, public_routes
from gateway.server import serve
from gateway.transcoder import Route, RouteTable, build_request, message_class, routes_for

__all__ = [
    "HTTP_STATUS",
    "Route",
    "RouteTable",
    "TranscodingProxy",
    "build_request",
    "create_app",
    "error_response",
    "message_class",
    "openapi_document",
    "public_routes",
    "routes_for",
    "serve",
]
