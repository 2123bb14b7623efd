"""Fixtures of the resilience suite: a CLI sandbox and fast-retry settings for the tool under test."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import MirrorCli

FAST = {"TRIVY_MIRROR_RETRY_BASE": "0.05", "TRIVY_MIRROR_READ_TIMEOUT": "1"}
"""Backoff base and the read timeout that detects a stalled server, shortened so faults cost milliseconds."""


@pytest.fixture
def mirror(tmp_path: Path) -> MirrorCli:
    return MirrorCli(tmp_path / "mirror-home")
