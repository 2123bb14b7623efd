"""Fan-out: ``sync --to A --to static:DIR --to DEAD`` writes every destination in one run, reads each source blob
once, reports per destination (``--json`` too), and a destination that cannot be reached fails alone."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from support.cli import MirrorCli
from support.registry import RegistryFactory, RegistryProcess, free_port
from support.trivy_assets import AssetSet

pytestmark = pytest.mark.e2e


def test_fan_out_reads_each_blob_once_and_isolates_a_failing_destination(
    mirror: MirrorCli, private_upstream: RegistryProcess, registry: RegistryFactory, assets: AssetSet,
    tmp_path: Path,
) -> None:
    first = registry()
    tree = tmp_path / "tree"
    dead = f"127.0.0.1:{free_port()}/trivy"
    before = len(private_upstream.requests_log())
    result = mirror.run(["sync", "--from", f"{private_upstream.host}/aquasec", "--to", f"{first.host}/trivy",
                         "--to", f"static:{tree}", "--to", dead, "--json"],
                        env={"TRIVY_MIRROR_RETRY_DELAY": "0.01"})
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    by_destination = {report["destination"]: report for report in document["destinations"]}
    assert document["ok"] is False
    assert set(by_destination) == {f"{first.host}/trivy", f"static:{tree}", dead}
    good = [report for name, report in by_destination.items() if name != dead]
    for report in good:
        assert report["ok"], report
        outcomes = {row["reference"]: row["outcome"] for row in report["results"]}
        assert outcomes["aquasec/trivy-db:2"] == "updated" and outcomes["aquasec/trivy-java-db:1"] == "updated"
    [failed] = [report for name, report in by_destination.items() if name == dead]
    assert not failed["ok"] and all(row["outcome"] == "failed" for row in failed["results"])
    assert any(dead in line for line in result.stderr.splitlines())

    blob_gets = Counter(path for method, path in private_upstream.requests_log()[before:]
                        if method == "GET" and "/blobs/" in path)
    assert blob_gets, "the blobs came from the upstream"
    assert max(blob_gets.values()) == 1, blob_gets  # each source blob read once for both destinations
    layer = next(iter(assets.db.manifest_json["layers"]))["digest"]
    assert (tree / "v2" / "aquasec" / "trivy-db" / "blobs" / layer).is_file()
    assert first.blob_path(layer).is_file()
