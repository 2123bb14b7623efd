"""Every way an artifact reaches the mirror applies the one publish policy alike.

``sync``, ``import`` and a push into a catalog repository are run here against real store layouts with the
same served version and the same candidate; each must refuse exactly when :func:`policy.regression` finds the
candidate older (before this policy existed, ``import`` refused an older checks bundle and ``sync`` took it).
The VEX sync is held to :func:`policy.vex_regression` the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from support.trivy_assets import Artifact, build_checks_bundle, build_vuln_db
from trivy_mirror.bundle.oci_import import OciImport
from trivy_mirror.catalog import policy
from trivy_mirror.catalog.assets import CATALOG, AssetSpec
from trivy_mirror.catalog.layerinfo import read_layer_metadata
from trivy_mirror.errors import RefusedCandidate
from trivy_mirror.mirror.assetsync import AssetSync
from trivy_mirror.mirror.endpoints import RegistryPool, StoreDestination
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.content import ManifestBytes
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor, Manifest
from trivy_mirror.oci.place import Place
from trivy_mirror.server.catalogpush import check_catalog_push
from trivy_mirror.store import Layout, Store
from trivy_mirror.vex import sync as vex_sync
from trivy_mirror.vex.index import VexIndex
from trivy_mirror.vex.storage import VexVersion

DB, _JAVA, CHECKS = CATALOG
NOW = datetime.now(UTC).replace(microsecond=0)

CASES = {
    "db older": (DB, lambda: build_vuln_db(updated_at=NOW - timedelta(hours=1)),
                 lambda: build_vuln_db(updated_at=NOW - timedelta(days=3)), True),
    "db newer": (DB, lambda: build_vuln_db(updated_at=NOW - timedelta(days=3)),
                 lambda: build_vuln_db(updated_at=NOW - timedelta(hours=1)), False),
    "checks older": (CHECKS, lambda: build_checks_bundle(version="2.10.0"),
                     lambda: build_checks_bundle(version="2.0.1"), True),
    "checks older, v prefix": (CHECKS, lambda: build_checks_bundle(version="v2.1.0"),
                               lambda: build_checks_bundle(version="2.0.9-rc1"), True),
    "checks newer": (CHECKS, lambda: build_checks_bundle(version="2.10.0"),
                     lambda: build_checks_bundle(version="2.11.0"), False),
    "checks custom build": (CHECKS, lambda: build_checks_bundle(version="2.10.0"),
                            lambda: build_checks_bundle(version=None), False),
}


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _put_blobs(layout: Layout, artifact: Artifact) -> None:
    for blob in (artifact.config, *artifact.layers):
        descriptor = Descriptor("application/octet-stream", Digest.of(blob), len(blob))
        if not await layout.blob_exists(descriptor):
            await layout.push_blob(descriptor, _one(blob))


async def _store(layout: Layout, artifact: Artifact, tag: str) -> ManifestBytes:
    await _put_blobs(layout, artifact)
    manifest = ManifestBytes(artifact.manifest, mediatype.OCI_MANIFEST)
    await layout.tag(tag, manifest)
    return manifest


class _Client:
    def __init__(self, store: Store) -> None:
        self.store = store

    def repository(self, name: str) -> Layout:
        return self.store.layout(name)


class _Pool:
    """Sources read from a store layout instead of a registry (the policy, not the transport, is tested)."""

    def __init__(self, store: Store) -> None:
        self._client = _Client(store)

    async def client(self, registry: str) -> _Client:
        return self._client


async def _sync_refuses(spec: AssetSpec, tmp: Path, served: Artifact, candidate: Artifact) -> bool:
    source, destination = Store(tmp / "source"), Store(tmp / "sync")
    await _store(destination.layout(spec.mirror_repository), served, "2")
    await _store(source.layout(spec.mirror_repository), candidate, "2")
    sync = AssetSync([Place("source.invalid", "aquasec")], cast(RegistryPool, _Pool(source)),
                     StoreDestination(destination))
    result = await sync.sync_tag(spec, spec.tags[0])
    assert result.outcome in ("refused", "updated"), result.message
    return result.outcome == "refused"


async def _import_refuses(spec: AssetSpec, tmp: Path, served: Artifact, candidate: Artifact) -> bool:
    destination = Store(tmp / "import")
    layout = destination.layout(spec.mirror_repository)
    await _store(layout, served, "2")
    staged = Store(tmp / "staged").layout(spec.mirror_repository)
    manifest = await _store(staged, candidate, "2")
    parsed = manifest.parsed
    assert isinstance(parsed, Manifest)
    metadata = await read_layer_metadata(staged, parsed.layers[0]) if spec.has_metadata else None
    current = await layout.resolve("2")
    assert current is not None
    importer = OciImport(tmp / "staging", StoreDestination(destination))
    return await importer._downgrade(spec, layout, "2", current, metadata, parsed) is not None


async def _push_refuses(spec: AssetSpec, tmp: Path, served: Artifact, candidate: Artifact) -> bool:
    layout = Store(tmp / "push").layout(spec.mirror_repository)
    await _store(layout, served, "2")
    await _put_blobs(layout, candidate)
    try:
        await check_catalog_push(spec.mirror_repository, layout, ManifestBytes(candidate.manifest,
                                                                               mediatype.OCI_MANIFEST), "2")
    except RefusedCandidate as err:
        assert "older than the served" in str(err)
        return True
    return False


async def _policy_refuses(spec: AssetSpec, tmp: Path, served: Artifact, candidate: Artifact) -> bool:
    layout = Store(tmp / "policy").layout(spec.mirror_repository)
    await _store(layout, served, "2")
    current = await layout.resolve("2")
    assert current is not None
    staged = Store(tmp / "policy-candidate").layout(spec.mirror_repository)
    parsed = (await _store(staged, candidate, "2")).parsed
    assert isinstance(parsed, Manifest)
    metadata = await read_layer_metadata(staged, parsed.layers[0]) if spec.has_metadata else None
    served_version = await policy.served_version(spec, layout, {}, "2", current)
    return policy.regression(spec, parsed, metadata, served_version) is not None


@pytest.mark.parametrize("case", list(CASES))
async def test_sync_import_and_push_apply_one_policy(case: str, tmp_path: Path) -> None:
    spec, make_served, make_candidate, older = CASES[case]
    served, candidate = make_served(), make_candidate()
    verdicts = {
        "policy": await _policy_refuses(spec, tmp_path, served, candidate),
        "sync": await _sync_refuses(spec, tmp_path, served, candidate),
        "import": await _import_refuses(spec, tmp_path, served, candidate),
        "push": await _push_refuses(spec, tmp_path, served, candidate),
    }
    assert verdicts == dict.fromkeys(verdicts, older)


@pytest.mark.parametrize(("candidate", "served"), [
    (NOW - timedelta(days=1), NOW), (NOW, NOW - timedelta(days=1)), (NOW, NOW), (None, NOW), (NOW, None),
])
def test_vex_sync_applies_the_policy(candidate: datetime | None, served: datetime | None) -> None:
    current = VexVersion("sha256:" + "0" * 64, 1, "loc", "loc", None, served, 0, 0, NOW, NOW)
    expected = policy.vex_regression("vexhub", candidate, served)
    if expected is None:
        vex_sync._check_not_older("vexhub", VexIndex(candidate, ()), current)
        return
    with pytest.raises(RefusedCandidate, match=f"older than the served {expected.served}"):
        vex_sync._check_not_older("vexhub", VexIndex(candidate, ()), current)
