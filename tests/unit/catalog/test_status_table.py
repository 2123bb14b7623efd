"""The ``status`` table fits an 80-column terminal with every asset, state and result readable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rich.console import Console

from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.commands.status import print_table

NOW = datetime(2026, 11, 30, 7, 54, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
ROWS = [
    AssetStatus("db", "aquasec/trivy-db:2", DIGEST, 712_300_000, NOW, NOW, "mirror.gcr.io/aquasec/trivy-db:2", NOW,
                "ok", "fresh"),
    AssetStatus("java-db", "aquasec/trivy-java-db:1", DIGEST, 1_234_000_000, NOW, NOW, None, NOW, "failed", "stale",
                "no source could be used: cannot reach ghcr.io"),
    AssetStatus("checks", "aquasec/trivy-checks:2", error="index.json is not a valid OCI image index"),
    AssetStatus("vex", "vex/vexhub", DIGEST, 1_000_000, NOW, NOW, None, NOW, "imported", "fresh"),
]


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_table_fits_and_hides_nothing_that_matters(width: int) -> None:
    out = Console(width=width, record=True, color_system=None)
    print_table(ROWS, out)
    text = out.export_text()
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width, text
    for cell in ("trivy-db:2", "trivy-java-db:1", "trivy-checks:2", "vex/vexhub", "fresh", "stale", "damaged",
                 "imported", "failed", "11-30 07:54"):
        assert cell in text, (cell, text)
    assert "…" not in text
    assert ("abababababab" in text) == (width >= 120)
    assert "java-db: last sync of aquasec/trivy-java-db:1 failed at " in text
