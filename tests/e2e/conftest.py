"""Fixtures shared by the end-to-end tests: a sandboxed trivy-mirror and an upstream a test may stop or change."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.registry import RegistryFactory, RegistryProcess, push_artifact
from support.trivy_assets import AssetSet


@pytest.fixture
def mirror(tmp_path: Path) -> MirrorCli:
    """``trivy-mirror`` run as a process, with a home of its own."""
    return MirrorCli(tmp_path / "mirror-home")


@pytest.fixture
def private_upstream(registry: RegistryFactory, assets: AssetSet) -> RegistryProcess:
    """An upstream of this test's own, holding the four upstream tags, so it can be stopped or changed."""
    process = registry()
    for repository, tag, artifact in assets.upstream_tags():
        push_artifact(process.host, repository, tag, artifact)
    return process

