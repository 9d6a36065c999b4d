"""What every REST-client command shares: connection flags, the client they make, error
handling, and resource names from what a user types. Its own module so that the command
modules (commands, versions, review) import it and not each other."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bytereview.client.api import Api, ClientError


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--url",
        help="gateway URL (env BYTEREVIEW_URL; else the URL `bytereview up` wrote in its data "
        "dir; else http://127.0.0.1:8080)",
    )
    group.add_argument(
        "--token", help="bearer token (env BYTEREVIEW_TOKEN; default: the dev token)"
    )
    group.add_argument("--api-key", help="API key instead of a token (env BYTEREVIEW_API_KEY)")


def client(args: argparse.Namespace) -> Api:
    return Api.from_env(args.url, args.token, args.api_key)


def guarded(run: Any) -> Any:
    """Turn a ClientError into one line on stderr and exit status 1."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            result: int = run(args)
        except ClientError as exc:
            print(f"bytereview: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as exc:
            # A command that knows better says what became of its job (extract removes one
            # it had not started); otherwise the job, if any, goes on without us.
            said = str(exc) or "interrupted; the job keeps running on the server"
            print(f"\n{said}", file=sys.stderr)
            return 130
        return result

    return wrapper


def job_name(value: str) -> str:
    return value if value.startswith("jobs/") else f"jobs/{value}"


def template_name(value: str) -> str:
    return value if value.startswith("templates/") else f"templates/{value}"


def etag_field(given: str) -> dict[str, str]:
    """A request's `etag` field, if one was given (`--etag`). Listed as `"2"`: the quotes may
    be left out on the command line, where keeping them needs a second pair."""
    if not given:
        return {}
    return {"etag": given if given.startswith('"') else f'"{given}"'}
