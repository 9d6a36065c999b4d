"""`bytereview up`: the whole platform on one machine, supervised like Kubernetes would.

`wiring` decides the processes, their settings and start order; `supervisor` runs them
(restarts with CrashLoopBackOff, ordered stop); `lifeline` makes them die with the launcher;
`lock` keeps a second launcher off the same data dir; `readiness` holds the probes.
"""

from launcher.up.wiring import free_port, nats_server_binary, run_platform

__all__ = ["free_port", "nats_server_binary", "run_platform"]
