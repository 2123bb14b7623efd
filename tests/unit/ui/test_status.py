"""The ``status`` tables: the assets fit an 80-column terminal with every state and result readable; the census
says what the mirror could not answer each client, and why a push was held."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rich.console import Console

from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.server.census import ClientRecord, Problem
from trivy_mirror.ui.status import print_clients, print_table

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


def test_pinned_and_held_assets_say_so_in_the_table() -> None:
    pin = {"digest": DIGEST, "by": "alice", "at": "2026-11-30T07:00:00Z", "reason": "INC-1"}
    candidate = {"digest": "sha256:" + "cd" * 32, "source": "ghcr.io/aquasecurity/trivy-db:2",
                 "first_seen": "2026-11-30T07:30:00Z", "held": "pinned"}
    row = AssetStatus("db", "aquasec/trivy-db:2", DIGEST, 712_300_000, NOW, NOW, None, NOW, "held", "fresh",
                      pinned=pin, candidate=candidate, held="pinned")
    out = Console(width=80, record=True, color_system=None)
    print_table([row], out)
    text = out.export_text()
    assert "fresh (pinned)" in text, text
    assert f"trivy-db:2: pinned to {DIGEST} by alice at 2026-11-30T07:00:00Z (INC-1)" in " ".join(text.split())
    assert f"held (pinned) candidate sha256:{'cd' * 32} from ghcr.io" in " ".join(text.split())


def test_the_census_says_why_a_push_was_held_and_keeps_brackets_literal() -> None:
    record = ClientRecord("0.76.0", NOW, NOW)
    record.problems[("held", "aquasec/trivy-db:2")] = Problem("aquasec/trivy-db:2", "held", 2, NOW,
                                                              "held (sanity): size [10%] below --max-shrink")
    record.problems[("not-found", "aquasec/trivy-checks:1")] = Problem("aquasec/trivy-checks:1", "not-found", 1, NOW)
    out = Console(width=200, record=True, color_system=None)
    print_clients([record], out)
    text = out.export_text()
    assert "held aquasec/trivy-db:2 x2: held (sanity): size [10%] below --max-shrink" in text, text
    assert "not-found aquasec/trivy-checks:1 x1" in text and "x1:" not in text
