"""The command-line REST client of the gateway.

`Api` is a small synchronous client of the REST API; the `commands` functions are what
`bytereview extract | jobs | templates | results | keys` run (the CLI wires them into argparse).
"""

from bytereview.client.api import DEFAULT_URL, Api, ClientError
from bytereview.client.commands import (
    add_extract_flags,
    add_jobs_actions,
    extract,
    jobs,
    register_templates,
    templates,
)
from bytereview.client.flow import parse_field, run_extract
from bytereview.client.keys import register_keys
from bytereview.client.options import add_connection_flags
from bytereview.client.review import review
from bytereview.client.versions import register_results

__all__ = [
    "DEFAULT_URL",
    "Api",
    "ClientError",
    "add_connection_flags",
    "add_extract_flags",
    "add_jobs_actions",
    "extract",
    "jobs",
    "parse_field",
    "register_keys",
    "register_results",
    "register_templates",
    "review",
    "run_extract",
    "templates",
]
