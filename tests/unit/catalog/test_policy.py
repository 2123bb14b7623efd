from datetime import UTC, datetime, timedelta

import pytest

from trivy_mirror.catalog import assets, policy
from trivy_mirror.catalog.assets import CATALOG, LayerMetadata
from trivy_mirror.errors import RefusedCandidate, UsageError
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.manifest import Descriptor, Index, Manifest

DB, JAVA, CHECKS = CATALOG
CONFIG = Descriptor(mediatype.OCI_EMPTY, Digest.of(b"{}"), 2)


def layer(media_type: str = mediatype.TRIVY_DB_LAYER, title: str | None = "db.tar.gz") -> Descriptor:
    annotations = {mediatype.ANNOTATION_TITLE: title} if title is not None else {}
    return Descriptor(media_type, Digest.of(b"layer"), 5, annotations)


def manifest(*layers: Descriptor, version: str | None = None) -> Manifest:
    annotations = {mediatype.ANNOTATION_VERSION: version} if version else {}
    return Manifest(mediatype.OCI_MANIFEST, CONFIG, layers, annotations)


def test_accepts_upstream_shape() -> None:
    assert policy.check_shape(DB, manifest(layer())).title == "db.tar.gz"


@pytest.mark.parametrize(("candidate", "reason"), [
    (manifest(), "exactly one"),
    (manifest(layer(), layer()), "exactly one"),
    (manifest(layer(title=None)), "no org.opencontainers.image.title"),
    (manifest(layer(title="../db.tar.gz")), "not a local relative path"),
    (manifest(layer(title="/db.tar.gz")), "not a local relative path"),
    (manifest(layer(title="C:\\db.tar.gz")), "not a local relative path"),
    (manifest(layer(title="db.bin")), "archive extension"),
    (manifest(layer(media_type=mediatype.TRIVY_JAVA_DB_LAYER)), "media type"),
    (Index(mediatype.OCI_INDEX, (), {}), "index"),
])
def test_refuses_what_trivy_refuses(candidate: Manifest | Index, reason: str) -> None:
    with pytest.raises(RefusedCandidate, match=reason):
        policy.check_shape(DB, candidate)


def test_schema_version_must_match_tag() -> None:
    now = datetime.now(UTC)
    policy.check_version(DB, "2", manifest(layer()), LayerMetadata(2, now, now))
    with pytest.raises(RefusedCandidate, match="Version is 3"):
        policy.check_version(DB, "2", manifest(layer()), LayerMetadata(3, now, now))
    with pytest.raises(RefusedCandidate, match="Version is 2"):
        policy.check_version(JAVA, "1", manifest(layer()), LayerMetadata(2, now, now))
    with pytest.raises(RefusedCandidate, match="metadata"):
        policy.check_version(DB, "2", manifest(layer()), None)


def test_checks_major_version_must_match_tag() -> None:
    policy.check_version(CHECKS, "2", manifest(layer(), version="2.1.0"), None)
    policy.check_version(CHECKS, "2", manifest(layer()), None)  # no annotation: a custom build, Trivy accepts it
    with pytest.raises(RefusedCandidate, match=r"1\.x"):
        policy.check_version(CHECKS, "2", manifest(layer(), version="1.9.0"), None)


def test_refuses_older_db() -> None:
    now = datetime.now(UTC)
    newer, older = LayerMetadata(2, now, now), LayerMetadata(2, now - timedelta(hours=6), now)
    policy.check_not_older(DB, manifest(layer()), newer, policy.Served(older))
    policy.check_not_older(DB, manifest(layer()), newer, policy.Served(newer))
    policy.check_not_older(DB, manifest(layer()), older, policy.NOTHING_SERVED)
    with pytest.raises(RefusedCandidate, match="older"):
        policy.check_not_older(DB, manifest(layer()), older, policy.Served(newer))


def test_select() -> None:
    assert [s.name for s in assets.select(["checks", "db"])] == ["db", "checks"]
    assert assets.select(["vex"]) == []
    with pytest.raises(UsageError, match="unknown asset"):
        assets.select(["nope"])


def test_refuses_updated_at_in_the_future() -> None:
    """A planted UpdatedAt in 2099 would make every real DB look older; sync, import and push refuse it."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    skewed = LayerMetadata(2, now + policy.MAX_FUTURE_SKEW - timedelta(seconds=1), None)
    policy.check_version(DB, "2", manifest(layer()), skewed, now)
    planted = LayerMetadata(2, datetime(2099, 1, 1, tzinfo=UTC), None)
    with pytest.raises(RefusedCandidate, match="in the future"):
        policy.check_version(DB, "2", manifest(layer()), planted, now)
    with pytest.raises(RefusedCandidate, match="in the future"):
        policy.check_version(DB, "2", manifest(layer()), planted)
