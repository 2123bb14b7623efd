"""``trivy_mirror.export_bundle`` and ``import_bundle`` in process, between real stores: a signed round trip with
a VEX repository, the refusal of a bundle signed by another key, and the one event stream both report on."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import trivy_mirror
from support.stores import put
from support.trivy_assets import build_vuln_db
from support.vex_repo import UpstreamVex
from trivy_mirror.signing import generate_key
from trivy_mirror.store import Store

from .conftest import sync


class Collected:
    """A :class:`~trivy_mirror.Progress` keeping what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.advanced = 0
        self._totals: dict[str, int] = {}

    def start(self, key: str, description: str, total: int) -> None:
        self._totals[key] = total
        self.calls.append(("start", description, total))

    def advance(self, key: str, amount: int) -> None:
        self.advanced += amount

    def finish(self, key: str, ok: bool = True) -> None:
        self.calls.append(("done" if ok else "failed", key, self._totals[key]))

    def steps(self) -> list[tuple[str, str, int]]:
        """(start/done/failed, transfer, its size) in order."""
        return self.calls

    def bytes(self) -> int:
        return self.advanced


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.fixture
async def store_with_vex(full_store: Store, vex_upstream: UpstreamVex) -> Store:
    await sync(full_store, vex_upstream)
    return full_store


async def test_signed_round_trip_through_the_facade(store_with_vex: Store, tmp_path: Path) -> None:
    generate_key(tmp_path / "signing.key")
    bundle = tmp_path / "bundle.tar"
    written = Collected()
    exported = await trivy_mirror.async_export_bundle(bundle, store=store_with_vex.root, sign=tmp_path / "signing.key",
                                                      progress=written)
    assert exported.sha256 == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert exported.bundle == str(bundle) and exported.signed_by is not None
    assert [(e.asset, e.reference) for e in exported.manifest.assets] == [
        ("db", "aquasec/trivy-db:2"), ("java-db", "aquasec/trivy-java-db:1"), ("checks", "aquasec/trivy-checks:2"),
        ("checks", "aquasec/trivy-checks:1"), ("vex", "vex/vexhub")]
    total = exported.manifest.total_size
    assert written.steps() == [("start", f"bundle {bundle}", total), ("done", f"bundle {bundle}", total)]
    assert written.bytes() == total

    target = tmp_path / "target"
    read = Collected()
    imported = await trivy_mirror.async_import_bundle(bundle, store=target, verify_key=tmp_path / "signing.key.pub",
                                                      sha256=f"sha256:{exported.sha256}", progress=read)
    assert imported.verified_key == exported.signed_by and imported.destination == str(target)
    assert [(r.entry.reference, r.outcome) for r in imported.results] == [
        (e.reference, "updated") for e in exported.manifest.assets]
    steps = read.steps()
    assert [step for step in steps if step[1] == f"bundle {bundle}"] == [
        ("start", f"bundle {bundle}", total), ("done", f"bundle {bundle}", total)]
    assert read.bytes() == total
    # Into the store each asset's staged layer is linked (or already there), not copied again: no transfer.
    assert [step for step in steps if step[1] != f"bundle {bundle}"] == []
    served = Store(target).layout("aquasec/trivy-db").read_manifest("2")
    assert served is not None and str(served.digest) == exported.manifest.assets[0].digest
    assert (await trivy_mirror.async_import_bundle(bundle, store=target)).results[0].outcome == "unchanged"


async def test_a_bundle_signed_by_another_key_leaves_the_destination_unchanged(full_store: Store,
                                                                              tmp_path: Path) -> None:
    generate_key(tmp_path / "signing.key")
    generate_key(tmp_path / "other.key")
    bundle = tmp_path / "bundle.tar"
    await trivy_mirror.async_export_bundle(bundle, store=full_store.root, assets=["db"], sign=tmp_path / "signing.key")
    target = tmp_path / "target"
    await trivy_mirror.async_import_bundle(bundle, store=target)  # the same content, imported unsigned
    before = snapshot(target)
    with pytest.raises(trivy_mirror.SignatureError, match="nothing imported: signed by another key"):
        await trivy_mirror.async_import_bundle(bundle, store=target, verify_key=tmp_path / "other.key.pub")
    assert snapshot(target) == before


async def test_export_to_a_stream_and_import_from_one(full_store: Store, tmp_path: Path) -> None:
    out = io.BytesIO()
    written = Collected()
    report = await trivy_mirror.async_export_bundle(out, store=full_store.root, assets=["checks"], progress=written)
    assert report.signed_by is None and {e.asset for e in report.manifest.assets} == {"checks"}
    assert written.steps()[0][1] == "bundle to stream"
    imported = await trivy_mirror.async_import_bundle(io.BytesIO(out.getvalue()), store=tmp_path / "target")
    assert [r.outcome for r in imported.results] == ["updated", "updated"]


async def test_mistakes_raise_the_public_errors_and_write_nothing(full_store: Store, tmp_path: Path) -> None:
    with pytest.raises(trivy_mirror.UsageError, match="unknown asset"):
        await trivy_mirror.async_export_bundle(tmp_path / "b.tar", store=full_store.root, assets=["nope"])
    with pytest.raises(trivy_mirror.UsageError, match=r"missing\.key"):
        await trivy_mirror.async_export_bundle(tmp_path / "b.tar", store=full_store.root, sign=tmp_path / "missing.key")
    with pytest.raises(trivy_mirror.StoreError, match="no store"):
        await trivy_mirror.async_export_bundle(tmp_path / "b.tar", store=tmp_path / "nowhere")
    with pytest.raises(trivy_mirror.BundleError, match="cannot read the bundle"):
        await trivy_mirror.async_import_bundle(tmp_path / "b.tar", store=tmp_path / "target")
    assert not (tmp_path / "b.tar").exists() and not (tmp_path / "target").exists()


def test_the_blocking_functions_run_their_own_loop(tmp_path: Path) -> None:
    with pytest.raises(trivy_mirror.StoreError, match="no store"):
        trivy_mirror.export_bundle(tmp_path / "b.tar", store=tmp_path / "nowhere")
    with pytest.raises(trivy_mirror.BundleError, match="not a bundle"):
        (tmp_path / "empty.tar").write_bytes(b"\0" * 1024)
        trivy_mirror.import_bundle(tmp_path / "empty.tar", store=tmp_path / "target")


async def test_import_takes_the_sanity_settings_and_no_soak_period(tmp_path: Path) -> None:
    """``trust`` reaches the import: the size check the defaults hold the bundle with is off with ``max_shrink=0``;
    a soak period (or a quorum) does not apply to a bundle, though the candidate was first seen just now."""
    now = datetime.now(UTC)
    served, smaller = Store(tmp_path / "served"), Store(tmp_path / "smaller")
    await put(served, "aquasec/trivy-db", "2", build_vuln_db(updated_at=now - timedelta(hours=12),
                                                              filler_bytes=400_000))
    await put(smaller, "aquasec/trivy-db", "2", build_vuln_db(updated_at=now - timedelta(hours=6)))
    bundle = tmp_path / "bundle.tar"
    await trivy_mirror.async_export_bundle(bundle, store=smaller.root, assets=["db"])
    with pytest.raises(trivy_mirror.RefusedCandidate, match=r"held \(sanity\).*below --max-shrink 0.5"):
        await trivy_mirror.async_import_bundle(bundle, store=served.root)
    trust = trivy_mirror.TrustSettings(max_shrink=0, holds={"": timedelta(days=1)}, quorum=3)
    imported = await trivy_mirror.async_import_bundle(bundle, store=served.root, trust=trust)
    assert [result.outcome for result in imported.results] == ["updated"]
