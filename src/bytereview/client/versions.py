"""The command-line client's view of trust in results (#16): a result's history, reverting
it, golden documents, and template versions with their golden-set scores."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bytereview.client.api import Api, ClientError
from bytereview.client.options import (
    add_connection_flags,
    client,
    etag_field,
    guarded,
    job_name,
    template_name,
)
from bytereview.client.review import add_review_action

SCORE_POLL_SECONDS = 1.0
FINISHED = ("COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELLED")


def _result_name(value: str) -> str:
    if not value.startswith("jobs/") or "/results/" not in value:
        raise ClientError(f"name a result as jobs/JOB/results/RESULT, got {value!r}")
    return value


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _print_history(versions: list[dict[str, Any]]) -> None:
    for v in versions:
        what = v.get("kind", "")
        if v.get("restoredVersion"):
            what += f" to v{v['restoredVersion']}"
        print(f"v{v['version']:<4} {what:<16} {v.get('createTime', ''):<28} {v.get('actor', '')}")
        for change in v.get("changes", []):
            old, new = change.get("oldValue"), change.get("newValue")
            print(f"       {change['field']}: {_shown(old)} -> {_shown(new)}")
        if v.get("reason"):
            print(f"       reason: {v['reason']}")


def _history(api: Api, result: str) -> list[dict[str, Any]]:
    versions: list[dict[str, Any]] = []
    token = ""
    while True:
        page = api.call("GET", f"/v1/{result}/versions", pageSize=1000, pageToken=token)
        versions.extend(page.get("versions", []))
        token = page.get("nextPageToken", "")
        if not token:
            return versions


@guarded
def results(args: argparse.Namespace) -> int:
    with client(args) as api:
        result = _result_name(args.result)
        if args.action == "history":
            _print_history(_history(api, result))
        elif args.action == "revert":
            version = (
                args.version
                if args.version.startswith("jobs/")
                else f"{result}/versions/{args.version.lstrip('v')}"
            )
            body = {"version": version, "reason": args.reason, **etag_field(args.etag)}
            reverted = api.call("POST", f"/v1/{result}:revert", body)
            print(f"{result} is at v{reverted.get('version')}")
        elif args.action == "golden":
            golden = api.call(
                "POST",
                f"/v1/{template_name(args.template)}/goldenDocuments",
                {"result": result},
            )
            print(f"{golden['name']}: {', '.join(golden.get('filePaths', []))}")
        return 0


def _version_name(template: str, version: str) -> str:
    if version.startswith("templates/"):
        return version
    return f"{template_name(template)}/versions/{version.lstrip('v')}"


def _score_line(version: dict[str, Any]) -> str:
    score = version.get("score") or {}
    state = score.get("state", "")
    if state == "SUCCEEDED":
        return (
            f"accuracy {score.get('accuracy', 0):.1%} "
            f"({score.get('valuesCorrect', 0)}/{score.get('valuesCompared', 0)} values, "
            f"{score.get('goldenDocuments', 0)} golden documents)"
        )
    if state == "FAILED":
        return f"scoring failed: {score.get('error', '')}"
    return "scoring..." if state == "RUNNING" else "not scored"


def _print_fields(version: dict[str, Any]) -> None:
    for f in (version.get("score") or {}).get("fieldScores", []):
        counts = f"{f.get('correct', 0)}/{f['compared']}"
        print(f"    {f['field']:<30} {f.get('accuracy', 0):.1%} ({counts})")


def _latest(api: Api, template: str) -> str:
    found: str = api.call("GET", f"/v1/{template_name(template)}")["currentVersion"]
    return found


@guarded
def template_versions(args: argparse.Namespace) -> int:
    """`templates versions|score|compare`."""
    with client(args) as api:
        if args.action == "versions":
            listed = api.call("GET", f"/v1/{template_name(args.template)}/versions", pageSize=100)
            for v in listed.get("versions", []):
                names = ", ".join(f["name"] for f in v.get("fields", []))
                print(f"v{v['version']:<4} {_score_line(v):<60} {names}")
            return 0
        name = _version_name(args.template, args.version) if args.version else ""
        name = name or _latest(api, args.template)
        if args.action == "score":
            version = api.call("POST", f"/v1/{name}:score", {})
            while args.wait and (version.get("score") or {}).get("state") == "RUNNING":
                time.sleep(SCORE_POLL_SECONDS)
                version = api.call("GET", f"/v1/{name}")
            print(f"{name}: {_score_line(version)}")
            _print_fields(version)
            return 1 if (version.get("score") or {}).get("state") == "FAILED" else 0
        base = _version_name(args.template, args.base) if args.base else ""
        compared = api.call("GET", f"/v1/{name}:compare", baseVersion=base)
        print(f"{compared['version']['name']} against {compared['base']['name']}")
        for f in compared.get("fields", []):
            before = _accuracy(f.get("baseAccuracy"))
            after = _accuracy(f.get("accuracy"))
            change = _field_change(f.get("base"), f.get("current"))
            print(f"    {f['field']:<30} {before:>7} -> {after:<7} {change}")
        if "accuracyChange" in compared:
            print(f"accuracy change: {compared['accuracyChange']:+.1%}")
        return 0


def _accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _field_change(base: dict[str, Any] | None, current: dict[str, Any] | None) -> str:
    if base is None:
        return "added"
    if current is None:
        return "removed"
    changed = [k for k in ("dataType", "instruction") if base.get(k, "") != current.get(k, "")]
    return f"changed: {', '.join(changed)}" if changed else ""


def register_results(sub: Any) -> None:
    """`results history|revert|golden`."""
    parser = sub.add_parser("results", help="a result's version history, revert, golden")
    actions = parser.add_subparsers(dest="action", required=True)
    history = actions.add_parser("history", help="every version: who, when, old -> new, why")
    history.add_argument("result", help="jobs/JOB/results/RESULT")
    add_connection_flags(history)
    revert = actions.add_parser("revert", help="restore an earlier version (as a new one)")
    revert.add_argument("result", help="jobs/JOB/results/RESULT")
    revert.add_argument("version", help="the version to restore: 1, v1 or its full name")
    revert.add_argument("--reason", default="")
    revert.add_argument(
        "--etag",
        default="",
        help="the current version as read (history's last; quotes optional): refused if the "
        "result changed since",
    )
    add_connection_flags(revert)
    golden = actions.add_parser("golden", help="mark the result golden for a template")
    golden.add_argument("result", help="jobs/JOB/results/RESULT")
    golden.add_argument("--template", required=True, help="templates/ID or ID")
    add_connection_flags(golden)
    parser.set_defaults(func=results)
    add_review_action(actions)  # its own func: a subparser's default wins over the parser's


def add_template_version_actions(actions: Any) -> None:
    """`templates versions|score|compare` on the `templates` command."""
    versions = actions.add_parser("versions", help="a template's versions and their scores")
    versions.add_argument("template", help="templates/ID or ID")
    add_connection_flags(versions)
    score = actions.add_parser(
        "score", help="score a version (the latest by default) on the golden documents"
    )
    score.add_argument("template", help="templates/ID or ID")
    score.add_argument("--version", default="", help="version number (default: the latest)")
    score.add_argument("--wait", action="store_true", help="wait for the score and print it")
    add_connection_flags(score)
    compare = actions.add_parser("compare", help="a version beside another, field by field")
    compare.add_argument("template", help="templates/ID or ID")
    compare.add_argument("--version", default="", help="version number (default: the latest)")
    compare.add_argument("--base", default="", help="version to compare with (default: previous)")
    add_connection_flags(compare)
    for parser in (versions, score, compare):
        parser.set_defaults(func=template_versions)


def _file_names(api: Api, job: str, wanted: list[str]) -> list[str]:
    """Files by resource name or by the path the user uploaded them under."""
    paths = [w for w in wanted if not w.startswith("jobs/")]
    by_path: dict[str, str] = {}
    token = ""
    while paths:
        page = api.call("GET", f"/v1/{job}/files", pageSize=1000, pageToken=token)
        by_path.update({f["originalPath"]: f["name"] for f in page.get("files", [])})
        token = page.get("nextPageToken", "")
        if not token:
            break
    unknown = [p for p in paths if p not in by_path]
    if unknown:
        raise ClientError(f"{job} has no file {unknown[0]!r}")
    return [w if w.startswith("jobs/") else by_path[w] for w in wanted]


@guarded
def rerun(args: argparse.Namespace) -> int:
    """`jobs rerun`: extract chosen files, failed tasks or results again."""
    with client(args) as api:
        job = job_name(args.job)
        body: dict[str, Any] = {
            "files": _file_names(api, job, args.file),
            "failedTasks": args.failed,
            "results": args.result,
            "fields": args.field,
            "force": args.force,
        }
        if args.template_version:
            body["templateVersion"] = args.template_version
        done = api.call("POST", f"/v1/{job}:rerun", body)
        queued, skipped = done.get("queuedTasks", []), done.get("skippedTasks", [])
        print(f"{job}: {len(queued)} task(s) queued again, {len(skipped)} unchanged skipped")
        status = done.get("job", {}).get("status", "")
        while args.wait and queued and status not in FINISHED:
            time.sleep(SCORE_POLL_SECONDS)
            status = api.call("GET", f"/v1/{job}").get("status", "")
        if args.wait and queued:
            print(f"{job} is {status}")
        # As `extract`: 2 when some of the work failed (a partly completed job included).
        return 2 if args.wait and status in ("FAILED", "PARTIALLY_COMPLETED") else 0


def add_rerun_action(actions: Any) -> None:
    """`jobs rerun` on the `jobs` command."""
    p = actions.add_parser("rerun", help="extract files, failed tasks or results again")
    p.add_argument("job", help="jobs/ID or ID")
    p.add_argument("--file", action="append", default=[], help="a file: its path or name")
    p.add_argument("--failed", action="store_true", help="every failed task")
    p.add_argument("--result", action="append", default=[], help="jobs/J/results/R")
    p.add_argument("--field", action="append", default=[], help="with --result: only this field")
    p.add_argument("--template-version", default="", help="templates/T/versions/N")
    p.add_argument("--force", action="store_true", help="even when the inputs are unchanged")
    p.add_argument("--wait", action="store_true", help="wait until the job finishes")
    add_connection_flags(p)
    p.set_defaults(func=rerun)
