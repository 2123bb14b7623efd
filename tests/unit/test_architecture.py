"""The import rules of ARCHITECTURE.md, checked on the source: a lower layer never imports a higher one, and no
import cycle runs between two parts of the package (a top-level module or package).

Every import counts, including those inside functions (a lazy import is still a dependency). A new top-level
module or package must be given its layer in :data:`LAYERS`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import trivy_mirror

SOURCE = Path(trivy_mirror.__file__).parent

LAYERS: dict[str, int] = {
    # 0: neutral helpers every layer may use
    "errors": 0, "timefmt": 0, "chunks": 0, "version": 0, "fsutil": 0, "lazy": 0, "jsonutil": 0, "clock": 0,
    # 1: OCI data types (no I/O) and the target interface over them
    "oci": 1, "target": 1, "http": 1,
    # 2: the two kinds of place: remote registries and the on-disk store
    "registry": 2, "store": 2,
    # 3: the generic copy engine
    "engine": 3,
    # 4: Trivy knowledge: assets, metadata, freshness, state, status, the publish policy
    "catalog": 4,
    # 5: features built on the catalog (acyclic among themselves)
    "trivyagent": 5, "signing": 5, "vex": 5, "static": 5, "mirror": 5, "bundle": 5, "trivycache": 5,
    "trivyconf": 5, "trivyconf_integrations": 5,
    # 6: whole syncs, as the CLI and the scheduler run them
    "orchestrate": 6,
    # 7: the server
    "server": 7,
    # 8: the public facade (trivy_mirror/__init__.py)
    "facade": 8,
    # 9: the command line
    "commands": 9, "cli": 9, "ui": 9, "__main__": 9,
}

ALLOWED_CYCLES: dict[frozenset[str], str] = {}
"""Cycles that exist today, each with the reason and the work that removes it."""


def _part(path: Path) -> str:
    relative = path.relative_to(SOURCE).with_suffix("")
    return "facade" if relative.parts == ("__init__",) else relative.parts[0]


def _imported_parts(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "trivy_mirror":
                yield from (alias.name if alias.name in LAYERS else "facade" for alias in node.names)
            elif node.module.startswith("trivy_mirror."):
                yield node.module.split(".")[1]
        elif isinstance(node, ast.Import):
            yield from (alias.name.split(".")[1] for alias in node.names if alias.name.startswith("trivy_mirror."))
        assert not (isinstance(node, ast.ImportFrom) and node.level > 0), "use absolute imports"


def _graph() -> dict[str, dict[str, set[str]]]:
    """part -> imported part -> the modules that import it."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        part = _part(path)
        edges = graph.setdefault(part, {})
        for imported in _imported_parts(ast.parse(path.read_text(), str(path))):
            if imported != part:
                edges.setdefault(imported, set()).add(str(path.relative_to(SOURCE)))
    return graph


def _cycles(graph: dict[str, dict[str, set[str]]]) -> list[frozenset[str]]:
    """The strongly connected groups of more than one part (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(frozenset(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_part_has_a_layer() -> None:
    unknown = sorted(set(_graph()) - set(LAYERS))
    assert not unknown, f"give {unknown} a layer in LAYERS (and ARCHITECTURE.md)"


def _violations(graph: dict[str, dict[str, set[str]]]) -> list[str]:
    return [f"{module} ({part}, layer {LAYERS[part]}) imports {imported} (layer {LAYERS[imported]})"
            for part, edges in graph.items() for imported, modules in edges.items()
            if LAYERS.get(imported, 0) > LAYERS.get(part, 0) for module in sorted(modules)]


def test_no_layer_imports_a_higher_one() -> None:
    violations = _violations(_graph())
    assert not violations, "\n".join(violations)


def test_no_import_cycle_between_parts() -> None:
    cycles = set(_cycles(_graph()))
    unexpected = [sorted(group) for group in cycles - set(ALLOWED_CYCLES)]
    assert not unexpected, f"import cycles between parts: {unexpected}"
    stale = [sorted(group) for group in set(ALLOWED_CYCLES) - cycles]
    assert not stale, f"these cycles are gone: remove them from ALLOWED_CYCLES: {stale}"


def test_the_checker_sees_a_violation_and_a_cycle() -> None:
    graph = {"oci": {"server": {"oci/x.py"}}, "server": {"oci": {"server/y.py"}}}
    assert _cycles(graph) == [frozenset({"oci", "server"})]
    assert _violations(graph) == ["oci/x.py (oci, layer 1) imports server (layer 7)"]
