"""The supervisor: child processes started, their output prefixed, restarted when they die.

Like a kubelet for one machine: a child that dies is started again after a CrashLoopBackOff
delay (`backoff.py`) while the others keep serving; children die with the launcher
(`lifeline.py`); a stop goes in reverse order, each child drained by SIGTERM and killed if it
overstays its grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from launcher.up.backoff import RestartBackoff
from launcher.up.lifeline import LAUNCHER_PID_ENV, die_with_launcher

STOP_GRACE_SECONDS = 30.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    pump: asyncio.Task[None] | None = None
    started_at: float = 0.0
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    # Stopped on purpose (a retired extra worker): not restarted.
    retired: bool = False


class Supervisor:
    def __init__(self, *, keep_fds: tuple[int, ...] = ()) -> None:
        self.children: list[Child] = []
        self.stopping = False
        # Inherited by every child (the data dir lock: held until the last child is gone).
        self._keep_fds = keep_fds
        self._width = 8

    async def start(self, child: Child) -> None:
        self._width = max(self._width, len(child.name))
        child.process = await asyncio.create_subprocess_exec(
            *child.argv,
            env={**child.env, LAUNCHER_PID_ENV: str(os.getpid())},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # The lifeline: never written, it reaches end-of-file in the child when we are gone.
            stdin=asyncio.subprocess.PIPE,
            # Own session: a terminal's Ctrl-C reaches only us, and we stop children in order.
            start_new_session=True,
            preexec_fn=die_with_launcher(os.getpid()),
            pass_fds=self._keep_fds,
        )
        child.started_at = time.monotonic()
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
        if process.stdin is not None:
            process.stdin.close()
        if self.stopping or child.retired:
            return
        ran = time.monotonic() - child.started_at
        delay = child.backoff.delay_after(ran)
        self.say(
            "up",
            f"{child.name} exited with code {code} after {ran:.1f}s; "
            f"restarting in {delay:g}s (crash {child.backoff.crashes} in a row)",
        )
        await asyncio.sleep(delay)
        if self.stopping or child.retired:
            return
        self.say("up", f"restarting {child.name}")
        try:
            await self.start(child)
        except OSError as exc:  # the binary vanished, out of pids...: try again later
            self.say("up", f"could not restart {child.name}: {exc}")
            child.started_at = time.monotonic()
            child.pump = asyncio.create_task(self._retry_later(child))

    async def _retry_later(self, child: Child) -> None:
        await asyncio.sleep(child.backoff.delay_after(0.0))
        if not self.stopping and not child.retired:
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
            # Dead already, maybe waiting out its backoff: just end the wait.
            if child.pump is not None:
                child.pump.cancel()
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
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(child.pump, timeout=5)
