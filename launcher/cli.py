"""The `bytereview` command: every process of the platform, and `up` to run them all."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn

from bytereview.core.lifecycle import setup_logging, shutdown_event
from bytereview.core.settings import Settings, get_settings

Service = Callable[[Settings, asyncio.Event], Awaitable[None]]


# Exit codes (README, "The command-line client"): 2 says some of the work failed, so a usage
# error is 1, not argparse's 2, which scripts could not tell from failed files.
USAGE_ERROR = 1


def _run_service(load: Callable[[], Service]) -> int:
    settings = get_settings()
    setup_logging(settings.log_level, json_logs=settings.log_json)
    from launcher.up import lifeline

    # Under `bytereview up`: stop when the launcher is gone (no-op otherwise).
    lifeline.hold()
    service = load()

    async def main() -> None:
        await service(settings, shutdown_event())

    run_loop(main())
    return 0


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Runs a long-lived process's main coroutine, on uvloop where it is installed.

    uvloop roughly halves the event loop's own share of a gRPC call's CPU; the gateway
    latency bench (bench/gateway_latency.py) showed it in p99 at 200 requests/s.
    """
    try:
        import uvloop
    except ImportError:  # Windows: no uvloop
        asyncio.run(main)
        return
    uvloop.run(main)


def _jobs() -> Service:
    from services.jobs import serve

    return serve


def _ingest() -> Service:
    from services.ingest import serve

    return serve


def _extract() -> Service:
    from services.extract import serve

    return serve


def _gateway() -> Service:
    from gateway import serve

    return serve


def _migrate(_: argparse.Namespace) -> int:
    from services.jobs import prepare_database

    settings = get_settings()
    setup_logging(settings.log_level, json_logs=settings.log_json)
    asyncio.run(prepare_database(settings))
    print("database is at the latest revision; seed rows present")
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    from services.jobs import run_cleanup
    from services.jobs.store.db import NotMigrated, check_migrated

    settings = get_settings()
    setup_logging(settings.log_level, json_logs=settings.log_json)
    try:
        asyncio.run(check_migrated(settings.database_url))
    except NotMigrated as exc:
        print(f"bytereview cleanup: {exc}", file=sys.stderr)
        return USAGE_ERROR
    for report in asyncio.run(run_cleanup(settings, args.task, hours=args.older_than_hours)):
        print(report)
    return 0


def _operator(args: argparse.Namespace) -> int:
    import kopf

    import bytereview_operator.handlers  # noqa: F401 - registers the handlers
    from bytereview_operator.peering import priority

    settings = get_settings()
    setup_logging(settings.log_level, json_logs=settings.log_json)
    kopf.run(
        clusterwide=args.namespace is None,
        namespaces=[args.namespace] if args.namespace else [],
        # With a peering object (the chart's) only one replica acts; without, this one does.
        standalone=args.peering is None,
        peering_name=args.peering,
        priority=priority(),
        liveness_endpoint=f"http://0.0.0.0:{args.health_port}/healthz",
    )
    return 0


class Parser(argparse.ArgumentParser):
    """argparse with usage errors exiting USAGE_ERROR; its subcommands' parsers too."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _extract_command(args: argparse.Namespace, load: Callable[[], Service]) -> int:
    from bytereview.client import extract as client_extract

    if args.inputs:
        result: int = client_extract(args)
        return result
    if args.field or args.template or args.combined:
        print("bytereview extract: name the files to extract from", file=sys.stderr)
        return USAGE_ERROR
    return _run_service(load)


def _up(args: argparse.Namespace) -> int:
    from launcher.up import run_platform

    return run_platform(data_dir=args.data_dir, gateway_port=args.port)


def build_parser() -> argparse.ArgumentParser:
    from bytereview.client import (
        add_extract_flags,
        add_jobs_actions,
        register_keys,
        register_results,
        register_templates,
    )

    parser = Parser(
        prog="bytereview",
        description="ByteReview: turn business documents into structured data.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run the whole platform on this machine (dev defaults)")
    up.add_argument(
        "--data-dir", default=None, help="where state is kept (default: BYTEREVIEW_DATA_DIR)"
    )
    up.add_argument(
        "--port",
        type=int,
        default=None,
        help="gateway port, next free if taken (default: BYTEREVIEW_GATEWAY_PORT, 8080)",
    )
    up.set_defaults(func=_up)

    services: dict[str, tuple[str, Callable[[], Service]]] = {
        "jobs": ("list|show|cancel|delete jobs over REST; bare, run the jobs service", _jobs),
        "ingest": ("run an ingest worker (file analysis, archive unpacking)", _ingest),
        "extract": (
            "extract fields from FILES over REST; with no files, run an extract worker",
            _extract,
        ),
        "gateway": ("run the REST gateway (HTTP)", _gateway),
    }
    for name, (help_text, load) in services.items():
        p = sub.add_parser(
            name, help=help_text, description=f"{help_text}. Configured by BYTEREVIEW_* env vars."
        )
        p.set_defaults(func=lambda _args, load=load: _run_service(load))
        # The component commands double as the REST client's: with files or an action they
        # talk to a running platform, bare they run the component (as the Helm chart does).
        if name == "extract":
            add_extract_flags(p)
            p.set_defaults(func=lambda args, load=load: _extract_command(args, load))
        if name == "jobs":
            add_jobs_actions(p, service=lambda _args, load=load: _run_service(load))
    register_templates(sub)
    register_results(sub)
    register_keys(sub)

    operator = sub.add_parser(
        "operator",
        help="run the autoscaler (kopf operator) for WorkerPool resources",
        description="Scale the ingest and extract Deployments from JetStream consumer lag.",
    )
    operator.add_argument("--namespace", default=None, help="watch one namespace (default: all)")
    operator.add_argument(
        "--peering",
        default=None,
        help="the KopfPeering object shared by the replicas; only one acts (default: standalone)",
    )
    operator.add_argument("--health-port", type=int, default=8080, help="liveness endpoint port")
    operator.set_defaults(func=_operator)

    migrate = sub.add_parser("migrate", help="apply database migrations and seed rows")
    migrate.set_defaults(func=_migrate)

    cleanup = sub.add_parser(
        "cleanup",
        help="remove old data: abandoned jobs, unpersisted results, orphaned objects",
        description="Remove old data; safe to re-run. Prints what was removed.",
    )
    cleanup.add_argument(
        "task",
        choices=["abandoned", "ephemeral", "orphans", "all"],
        help="abandoned: never-finalized jobs; ephemeral: finished jobs with persist_data=false; "
        "orphans: storage objects of deleted jobs",
    )
    cleanup.add_argument(
        "--older-than-hours",
        type=float,
        default=None,
        help="age threshold (defaults: abandoned 24, ephemeral 24, orphans 6)",
    )
    cleanup.set_defaults(func=_cleanup)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
