"""Pages that name code stay true to it: the state-machine page and the benchmarks' README."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from google.protobuf.descriptor import EnumDescriptor

from bytereview.jobs.v1 import resources_pb2
from services.jobs.domain.status import TABLES

ROOT = Path(__file__).resolve().parent.parent


def _docs_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_tool", ROOT / "tools" / "docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_tool"] = module
    spec.loader.exec_module(module)
    return module


def test_state_machine_page_matches_the_transition_table() -> None:
    assert not _docs_tool().is_stale(), "run `python tools/docs.py generate` and commit the page"


def test_the_page_names_every_move_of_the_table() -> None:
    # Read back from the page itself, independently of the generator's code.
    page = (ROOT / "docs" / "state-machine.md").read_text()
    sections = dict(re.findall(r"^## (\w+)\n\n(.*?)(?=^## |\Z)", page, re.MULTILINE | re.DOTALL))
    for kind, moves in TABLES.items():
        rows = re.findall(r"^\| `(\w+)` \| .*? \| (.*) \|$", sections[kind.capitalize()], re.M)
        listed = {status: set(re.findall(r"`(\w+)`", targets)) for status, targets in rows}
        assert listed == {str(s): {str(t) for t in targets} for s, targets in moves.items()}


def test_every_proto_status_is_in_the_table_with_a_meaning() -> None:
    tool = _docs_tool()
    proto_text = tool.RESOURCES.read_text()
    enums: dict[str, EnumDescriptor] = {
        "job": resources_pb2.Job.Status.DESCRIPTOR,
        "file": resources_pb2.SourceFile.Status.DESCRIPTOR,
        "task": resources_pb2.Task.Status.DESCRIPTOR,
    }
    for kind, enum in enums.items():
        names = {v.name for v in enum.values} - {"STATUS_UNSPECIFIED"}
        assert {str(s) for s in TABLES[kind]} == names, kind
        meanings = tool.status_meanings(proto_text, tool.MESSAGES[kind])
        assert all(meanings[name] for name in names), (kind, meanings)


def test_bench_readme_runs_every_benchmark() -> None:
    readme = (ROOT / "bench" / "README.md").read_text()
    for script in sorted((ROOT / "bench").glob("*.py")):
        if script.name != "__init__.py":
            assert f"bench/{script.name}" in readme, script.name
