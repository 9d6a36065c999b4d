"""The jobs service's layers: api -> domain -> store, messaging beside the store; nothing
imports upwards, and no other component is imported (docs/DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import services.jobs

ROOT = Path(services.jobs.__file__).parent
# What each layer may import of the jobs service (`root` is server.py and __init__.py).
ALLOWED = {
    "store": {"store"},
    "messaging": {"messaging", "store"},
    "domain": {"domain", "messaging", "store"},
    "api": {"api", "domain", "store"},
    "root": {"root", "api", "domain", "messaging", "store"},
}


def _layer_of_path(path: Path) -> str:
    first = path.relative_to(ROOT).parts[0]
    return first if first in ALLOWED and first != "root" else "root"


def _imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += (
                [node.module]
                if node.module != "services.jobs"
                else [f"services.jobs.{alias.name}" for alias in node.names]
            )
    return found


def _layer_of_module(module: str) -> str:
    part = module.removeprefix("services.jobs.").split(".")[0]
    return part if part in ALLOWED and part != "root" else "root"


def layer_graph() -> dict[str, set[str]]:
    """Layer -> the layers (and foreign components) its modules import."""
    graph: dict[str, set[str]] = {layer: set() for layer in ALLOWED}
    for path in sorted(ROOT.rglob("*.py")):
        layer = _layer_of_path(path)
        for module in _imports(ast.parse(path.read_text())):
            if module.startswith("services.jobs."):
                graph[layer].add(_layer_of_module(module))
            elif module.split(".")[0] in ("services", "gateway", "bytereview_operator"):
                graph[layer].add(module)
    return graph


def test_no_layer_imports_upwards_or_another_component() -> None:
    graph = layer_graph()
    for layer, imported in graph.items():
        assert imported <= ALLOWED[layer], (layer, imported - ALLOWED[layer])


def test_the_layer_graph_is_what_the_design_says() -> None:
    assert {layer: sorted(imported - {layer}) for layer, imported in layer_graph().items()} == {
        "store": [],
        "messaging": ["store"],
        "domain": ["messaging", "store"],
        "api": ["domain", "store"],
        "root": ["api", "domain", "messaging", "store"],
    }
