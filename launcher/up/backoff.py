"""How long `up` waits before restarting a child that died: Kubernetes' CrashLoopBackOff.

1 s after the first crash, then doubling, capped at 5 minutes; a child that ran fine for a
minute before it died starts again from 1 s. A crash-looping child costs almost nothing while
everything else keeps serving, and one that dies once in a while comes back at once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RestartBackoff:
    initial_seconds: float = 1.0
    cap_seconds: float = 300.0
    # A run at least this long was healthy: the next crash is a first one again.
    reset_after_seconds: float = 60.0
    crashes: int = 0

    def delay_after(self, ran_seconds: float) -> float:
        """The wait before the next start, given how long the child ran before it died."""
        if ran_seconds >= self.reset_after_seconds:
            self.crashes = 0
        delay: float = min(self.initial_seconds * 2.0**self.crashes, self.cap_seconds)
        self.crashes += 1
        return delay
