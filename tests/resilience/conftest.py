"""Fixtures of the resilience suite: a CLI sandbox and fast-retry settings for the tool under test."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import MirrorCli


@pytest.fixture
def mirror(tmp_path: Path) -> MirrorCli:
    return MirrorCli(tmp_path / "mirror-home")
