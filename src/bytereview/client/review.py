"""`bytereview results review`: the review queue from the command line.

    bytereview results review [JOB]                  # the queue, most consequential first
    bytereview results review JOB --accept NAME      # keep a value as it is
    bytereview results review JOB --correct NAME VALUE  # set the right value

Without JOB the queue spans every job of the caller (`jobs/-`). Each listed value shows its
result's etag; `--etag` with an accept or a correction refuses it (exit 1) when the result
changed since it was listed, instead of accepting or overwriting what someone else changed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from typing import Any

from bytereview.client.api import Api, ClientError
from bytereview.client.options import add_connection_flags, etag_field, guarded


def _job_name(value: str) -> str:
    if not value or value == "-":
        return "jobs/-"
    return value if value.startswith("jobs/") else f"jobs/{value}"


def _line(item: dict[str, Any]) -> str:
    assessment = item.get("assessment", {})
    quote = (assessment.get("evidence", {}).get("quote") or "").replace("\n", " ")
    reasons = ",".join(item.get("reasons", []))
    value = json.dumps(item.get("value"))
    # The name alone on its line: it is what --accept and --correct take, copied whole.
    return (
        f"{item['name']}\n    {item.get('field', ''):<20} {value:<30} "
        f"confidence {assessment.get('confidence', 0):.2f}  {reasons:<26} "
        f"etag {item.get('etag', '')}  {quote[:60]!r}"
    )


def _correct(api: Api, name: str, raw: str, etag: str) -> Any:
    """PATCH the result with the one value (UpdateResult, mask `values.<field>`)."""
    result, _, field = name.rpartition("/values/")
    if not result or not field:
        raise ClientError(f"{name!r} is not a review item name (jobs/J/results/R/values/FIELD)")
    # Sent as typed, as text: the platform reads it as its field's type ("12.40" in a currency
    # field, "yes" in a yes/no one). Read as JSON, an invoice number 12345678901234567890
    # became the number 1.2345678901234567e+19, `1e5` became 100000.0 and `true` a boolean,
    # each stored so in a text field. Only `null` (clear the value) and a quoted JSON string
    # are read as JSON.
    value: Any = raw
    if raw == "null" or raw.startswith('"'):
        with contextlib.suppress(ValueError):
            value = json.loads(raw)
    body = {"name": result, "values": {field: value}, **etag_field(etag)}
    return api.call("PATCH", f"/v1/{result}?updateMask=values.{field}", body)


@guarded
def review(args: argparse.Namespace) -> int:
    if args.etag and not (args.accept or args.correct):
        raise ClientError("--etag goes with --accept or --correct: the etag of the value read")
    with Api.from_env(args.url, args.token, args.api_key) as api:
        if args.accept:
            accepted = api.call("POST", f"/v1/{args.accept}:accept", etag_field(args.etag))
            print(f"accepted {accepted['name']}")
            return 0
        if args.correct:
            name, value = args.correct
            _correct(api, name, value, args.etag)
            print(f"corrected {name}")
            return 0
        parent = _job_name(args.job)
        listed = api.call(
            "GET",
            f"/v1/{parent}/reviewItems",
            pageSize=args.limit,
            confidenceBelow=args.below,
        )
        items = listed.get("reviewItems", [])
        for item in items:
            print(_line(item))
        print(f"{listed.get('totalSize', 0)} values need review")
        return 0


def add_review_action(actions: Any) -> None:
    """`results review` on the `results` command (client/versions.py registers it)."""
    p = actions.add_parser("review", help="values that need review, most consequential first")
    p.add_argument("job", nargs="?", default="-", help="jobs/ID or ID (default: every job)")
    p.add_argument(
        "--below", type=float, default=0.0, help="confidence threshold (default: the platform's)"
    )
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--accept", metavar="NAME", help="accept the value NAME as it is")
    p.add_argument("--correct", nargs=2, metavar=("NAME", "VALUE"), help="set the value NAME")
    p.add_argument(
        "--etag",
        default="",
        help="with --accept or --correct: the etag listed (quotes optional); refused if the "
        "result changed since",
    )
    add_connection_flags(p)
    p.set_defaults(func=review)
