"""The command-line client's subcommands: `extract FILES...`, `jobs ...`, `templates ...`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bytereview.client.api import ClientError
from bytereview.client.flow import parse_field, run_extract
from bytereview.client.options import (
    add_connection_flags,
    client,
    guarded,
    job_name,
    template_name,
)


def add_extract_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="FILES_OR_ZIPS",
        help="documents, ZIP archives or folders to extract from (none: run the extract worker)",
    )
    parser.add_argument("--template", default="", help="template to use, by name")
    parser.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="NAME:TYPE[:INSTRUCTION]",
        help="a field to extract, e.g. 'total:currency:amount due incl. tax' (repeatable)",
    )
    parser.add_argument(
        "--combined", action="store_true", help="one result per folder instead of per file"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("results.csv"), help="results.csv, .xlsx or .json"
    )
    add_connection_flags(parser)


@guarded
def extract(args: argparse.Namespace) -> int:
    with client(args) as api:
        return run_extract(
            api,
            args.inputs,
            fields=args.field,
            template=args.template,
            combined=args.combined,
            out=args.out,
        )


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2))


@guarded
def jobs(args: argparse.Namespace) -> int:
    with client(args) as api:
        if args.action == "list":
            listed = api.call("GET", "/v1/jobs", pageSize=args.limit)
            for job in listed.get("jobs", []):
                counters = job.get("counters", {})
                print(
                    f"{job['name']:<44} {job.get('status', ''):<20} "
                    f"files {counters.get('filesTotal', 0):>5}  "
                    f"tasks {counters.get('tasksSucceeded', 0)}/{counters.get('tasksTotal', 0)}  "
                    f"{job.get('displayName', '')}"
                )
        elif args.action == "show":
            _print(api.call("GET", f"/v1/{job_name(args.job)}"))
        elif args.action == "cancel":
            _print(api.call("POST", f"/v1/{job_name(args.job)}:cancel", {}))
        elif args.action == "delete":
            api.call("DELETE", f"/v1/{job_name(args.job)}")
            print(f"deleted {job_name(args.job)}")
        return 0


@guarded
def templates(args: argparse.Namespace) -> int:
    with client(args) as api:
        if args.action == "list":
            for t in api.call("GET", "/v1/templates", pageSize=100).get("templates", []):
                names = ", ".join(f["name"] for f in t.get("fields", []))
                print(f"{t['name']:<44} {t.get('displayName', ''):<30} {names}")
        elif args.action == "show":
            _print(api.call("GET", f"/v1/{template_name(args.template)}"))
        elif args.action == "create":
            if not args.field:
                raise ClientError("a template needs at least one --field name:type[:instruction]")
            body = {
                "displayName": args.display_name,
                "description": args.description,
                "fields": [parse_field(f) for f in args.field],
            }
            _print(api.call("POST", "/v1/templates", body))
        elif args.action == "delete":
            api.call("DELETE", f"/v1/{template_name(args.template)}")
            print(f"deleted {template_name(args.template)}")
        return 0


def add_jobs_actions(parser: argparse.ArgumentParser, *, service: Any) -> None:
    """`jobs list|show|cancel|delete` on the `jobs` command; no action runs `service`."""
    jobs_actions = parser.add_subparsers(dest="action", required=False, metavar="ACTION")
    listing = jobs_actions.add_parser("list", help="your jobs, newest first")
    listing.add_argument("--limit", type=int, default=50)
    add_connection_flags(listing)
    for action in ("show", "cancel", "delete"):
        p = jobs_actions.add_parser(action, help=f"{action} one job")
        p.add_argument("job", help="jobs/ID or ID")
        add_connection_flags(p)
    from bytereview.client.versions import add_rerun_action

    add_rerun_action(jobs_actions)
    parser.set_defaults(func=lambda args: jobs(args) if args.action else service(args))


def register_templates(sub: Any) -> None:
    templates_parser = sub.add_parser("templates", help="manage extraction templates (REST client)")
    actions = templates_parser.add_subparsers(dest="action", required=True)
    add_connection_flags(actions.add_parser("list", help="your templates"))
    for action in ("show", "delete"):
        p = actions.add_parser(action, help=f"{action} one template")
        p.add_argument("template", help="templates/ID or ID")
        add_connection_flags(p)
    create = actions.add_parser("create", help="a template from --field flags")
    create.add_argument("display_name", help="the template's name")
    create.add_argument("--description", default="")
    create.add_argument("--field", action="append", default=[], metavar="NAME:TYPE[:INSTRUCTION]")
    add_connection_flags(create)
    templates_parser.set_defaults(func=templates)
    # Imported here: versions.py builds on this module's helpers.
    from bytereview.client.versions import add_template_version_actions

    add_template_version_actions(actions)
