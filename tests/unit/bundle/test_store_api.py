"""The bundle reads and writes the store only through the store package's names (``Store``, ``Layout`` and their
operations), never its file names or index internals: how the store keeps its files may change, the bundle
format may not."""

from __future__ import annotations

import ast
from pathlib import Path

import trivy_mirror.bundle
import trivy_mirror.store

BUNDLE = Path(trivy_mirror.bundle.__file__).parent


def test_the_bundle_imports_only_the_store_package() -> None:
    found = []
    for path in sorted(BUNDLE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("trivy_mirror.store"):
                found.append((path.name, node.module, [alias.name for alias in node.names]))
            elif isinstance(node, ast.Import):
                found.extend((path.name, alias.name, []) for alias in node.names
                             if alias.name.startswith("trivy_mirror.store"))
    assert found, "the bundle reads the store: this test must see it"
    assert [(name, module) for name, module, _ in found if module != "trivy_mirror.store"] == []
    assert {n for _, _, names in found for n in names} <= set(trivy_mirror.store.__all__)
