"""`bytereview keys`: the caller's API keys, for scripts and partners without the web app.

    bytereview keys list                # name, prefix, created, last used
    bytereview keys create "Nightly ETL"  # prints the secret once
    bytereview keys delete ID           # revokes it (users/me/apiKeys/ID or ID)

Only the secret goes to stdout on create (`KEY=$(bytereview keys create x)`); what it is
goes to stderr. The platform keeps a hash: a lost secret is a new key.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bytereview.client.options import add_connection_flags, client, guarded

MINE = "users/me"


def _key_name(value: str) -> str:
    return value if value.startswith("users/") else f"{MINE}/apiKeys/{value}"


@guarded
def keys(args: argparse.Namespace) -> int:
    with client(args) as api:
        if args.action == "list":
            listed = api.call("GET", f"/v1/{MINE}/apiKeys")  # at most 50 a user: one page
            for key in listed.get("apiKeys", []):
                print(
                    f"{key['name']:<60} {key.get('prefix', ''):<12} "
                    f"created {key.get('createTime', '-'):<28} "
                    f"last used {key.get('lastUsedTime', 'never'):<28} "
                    f"{key.get('displayName', '')}"
                )
        elif args.action == "create":
            made = api.call("POST", f"/v1/{MINE}/apiKeys", {"displayName": args.display_name})
            print(
                f"{made['name']}: the secret below is shown this once; keep it (only its "
                "hash is stored)",
                file=sys.stderr,
            )
            print(made["key"])
        elif args.action == "delete":
            api.call("DELETE", f"/v1/{_key_name(args.key)}")
            print(f"revoked {_key_name(args.key)}")
        return 0


def register_keys(sub: Any) -> None:
    parser = sub.add_parser("keys", help="your API keys: list, create, delete (REST client)")
    actions = parser.add_subparsers(dest="action", required=True)
    add_connection_flags(actions.add_parser("list", help="your API keys"))
    create = actions.add_parser("create", help="a new key; prints its secret once")
    create.add_argument("display_name", help="what the key is for")
    add_connection_flags(create)
    delete = actions.add_parser("delete", help="revoke one key")
    delete.add_argument("key", help="users/me/apiKeys/ID or ID")
    add_connection_flags(delete)
    parser.set_defaults(func=keys)
