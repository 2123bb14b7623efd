"""CLI tests run the group in-process (CliRunner), whose callback sets up logging for a command line: restore the
``trivy_mirror`` logger and the console afterwards, so later tests' ``caplog`` still sees the records."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from trivy_mirror.ui import console


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    logger = logging.getLogger("trivy_mirror")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved
    console.use_json(False)
