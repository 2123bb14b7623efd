"""The public API in-process: ``trivy_mirror.sync`` and ``trivy_mirror.status`` against a real upstream registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import trivy_mirror
from support.registry import RegistryFactory, RegistryProcess
from support.trivy_assets import AssetSet

pytestmark = pytest.mark.e2e


def test_sync_then_status_in_process(upstream: RegistryProcess, assets: AssetSet, tmp_path: Path) -> None:
    store = tmp_path / "store"
    source = [f"{upstream.host}/aquasec"]
    report = trivy_mirror.sync(store=store, sources=source, assets=["db", "checks"])
    assert report.ok and report.destination == str(store)
    assert {(r.reference, r.outcome) for r in report.results} == {
        ("aquasec/trivy-db:2", "updated"), ("aquasec/trivy-checks:2", "updated"), ("aquasec/trivy-checks:1", "updated")}
    rows = {row.reference: row for row in trivy_mirror.status(store=store, assets=["db", "checks"]).assets}
    assert rows["aquasec/trivy-db:2"].state == "fresh" and rows["aquasec/trivy-db:2"].digest == assets.db.digest
    again = trivy_mirror.sync(store=store, sources=source, assets=["db"])
    assert [r.outcome for r in again.results] == ["unchanged"] and again.results[0].stats.bytes_copied == 0


class Seen:
    """A :class:`trivy_mirror.Progress` keeping what each transfer was told."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.advanced: dict[str, int] = {}
        self.finished: dict[str, bool] = {}

    def start(self, key: str, description: str, total: int) -> None:
        self.started.append(key)
        self.advanced[key] = 0

    def advance(self, key: str, amount: int) -> None:
        self.advanced[key] += amount

    def finish(self, key: str, ok: bool = True) -> None:
        self.finished[key] = ok


def test_export_then_import_into_a_registry_in_process(upstream: RegistryProcess, registry: RegistryFactory,
                                                       assets: AssetSet, tmp_path: Path) -> None:
    """The air gap as a library: a bundle of the synced store pushed into a registry with injected options, the
    layer's push reported on the event stream as a named item."""
    store, bundle = tmp_path / "store", tmp_path / "bundle.tar"
    assert trivy_mirror.sync(store=store, sources=[f"{upstream.host}/aquasec"], assets=["db"]).ok
    exported = trivy_mirror.export_bundle(bundle, store=store, assets=["db"])
    assert [entry.digest for entry in exported.manifest.assets] == [assets.db.digest]
    destination = registry()
    seen = Seen()
    imported = trivy_mirror.import_bundle(bundle, to=f"{destination.host}/isolated", sha256=exported.sha256,
                                          options=trivy_mirror.ClientOptions(), progress=seen)
    assert imported.destination == f"{destination.host}/isolated"
    assert [(r.entry.reference, r.outcome) for r in imported.results] == [("aquasec/trivy-db:2", "updated")]
    [pushed] = [key for key in seen.started if key.startswith("db to ")]
    assert (seen.finished[pushed], seen.advanced[pushed]) == (True, len(assets.db.layers[0]))


def test_fan_out_and_status_report(upstream: RegistryProcess, assets: AssetSet, tmp_path: Path) -> None:
    """``to`` as a list is a fan-out (one report per destination, in order); ``status`` of a static tree is a
    report without the store's census and audit."""
    trees = [f"static:{tmp_path / 'a'}", f"static:{tmp_path / 'b'}"]
    fan_out = trivy_mirror.sync(to=trees, sources=[f"{upstream.host}/aquasec"], assets=["db"],
                                trust=trivy_mirror.TrustSettings(quorum=1))
    assert fan_out.ok and [report.destination for report in fan_out.reports] == trees
    assert fan_out.to_json() == {"ok": True, "destinations": [report.to_json() for report in fan_out.reports]}
    report = trivy_mirror.status(to=trees[1], assets=["db"])
    assert [(row.display_name, row.state) for row in report.assets] == [("trivy-db:2", "fresh")]
    assert report.clients is None and report.integrity is None and not report.damaged
    with pytest.raises(trivy_mirror.UsageError, match="together"):
        trivy_mirror.sync(store=tmp_path / "s", to=trees, assets=["db"])

def test_errors_are_the_public_classes(tmp_path: Path) -> None:
    with pytest.raises(trivy_mirror.UsageError, match="unknown asset"):
        trivy_mirror.sync(store=tmp_path, assets=["nope"])
    with pytest.raises(trivy_mirror.UsageError, match="together"):
        trivy_mirror.status(store=tmp_path, to="127.0.0.1:5000/x")


def test_importing_the_package_loads_no_operation() -> None:
    """``import trivy_mirror`` stays cheap (the CLI's --version path): aiohttp loads on first use only."""
    code = "import sys, trivy_mirror; assert 'aiohttp' not in sys.modules; trivy_mirror.ClientOptions; " \
           "assert 'aiohttp' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
