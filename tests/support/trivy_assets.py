"""Builders of real Trivy scan assets with planted findings, in the exact shape upstream pushes them.

Each asset is an OCI artifact as ``oras push`` (image spec v1.1) makes it: an ``artifactType``, the empty config
descriptor with inline data, one layer titled with ``org.opencontainers.image.title`` and a creation annotation.
The contents carry made-up findings only these assets can explain, so a scan that reports them proves Trivy used
the asset (TRIVY-ASSETS.md sections 2.7 and 13):

* vulnerability DB: CVE-2099-0001 for pip ``requests < 2.0.0``, CVE-2099-0002 for a maven artifact;
* Java DB: the SHA-1 of :func:`build_test_jar` maps to that maven artifact, so ``trivy rootfs`` finds CVE-2099-0002;
* checks bundle: check TEST001 (AVD-TEST-0001) that fires on any Dockerfile with a ``FROM``.

Everything is deterministic: the same arguments give the same bytes and digests. This module deliberately does not
import ``trivy_mirror``: it is the independent description the product is tested against.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import random
import sqlite3
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .bbolt import write_bbolt

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"

DB_LAYER = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
JAVA_DB_LAYER = "application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip"
CHECKS_LAYER = "application/vnd.cncf.openpolicyagent.layer.v1.tar+gzip"
TRIVY_ARTIFACT_TYPE = "application/vnd.aquasec.trivy.config.v1+json"
CHECKS_ARTIFACT_TYPE = "application/vnd.cncf.openpolicyagent.config.v1+json"

ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_VERSION = "org.opencontainers.image.version"
ANNOTATION_REVISION = "org.opencontainers.image.revision"

DB_REPOSITORY = "aquasec/trivy-db"
JAVA_DB_REPOSITORY = "aquasec/trivy-java-db"
CHECKS_REPOSITORY = "aquasec/trivy-checks"

PIP_CVE = "CVE-2099-0001"
MAVEN_CVE = "CVE-2099-0002"
PIP_PACKAGE = "requests"
MAVEN_GROUP = "org.example.planted"
MAVEN_ARTIFACT = "planted-lib"
MAVEN_VERSION = "1.0.0"
JAR_NAME = f"{MAVEN_ARTIFACT}-{MAVEN_VERSION}.jar"
CHECK_ID = "TEST001"
CHECK_AVD_ID = "AVD-TEST-0001"

FILLER_BUCKET = b"trivy-mirror-test-filler"
_FILLER_CHUNK = 1 << 20
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

PLANTED_CHECK = f"""\
# METADATA
# title: Planted test check
# description: Fires on every Dockerfile that has a FROM instruction; it exists only in the test bundle.
# scope: package
# related_resources:
#   - https://example.invalid/trivy-mirror/{CHECK_ID}
# custom:
#   id: {CHECK_ID}
#   avd_id: {CHECK_AVD_ID}
#   severity: HIGH
#   short_code: planted-check
#   recommended_action: Nothing to do, this is a test fixture.
#   input:
#     selector:
#       - type: dockerfile
package builtin.dockerfile.{CHECK_ID}

import rego.v1

deny contains res if {{
\tsome stage in input.Stages
\tsome instruction in stage.Commands
\tinstruction.Cmd == "from"
\tres := result.new("planted finding: the Dockerfile has a FROM instruction", instruction)
}}
"""


def sha256_digest(data: bytes) -> str:
    """The OCI digest (``sha256:<hex>``) of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Artifact:
    """An OCI artifact ready to push: manifest bytes, config blob and layer blobs."""

    manifest: bytes
    config: bytes
    layers: list[bytes]
    media_type: str = OCI_MANIFEST

    @property
    def digest(self) -> str:
        """The manifest digest."""
        return sha256_digest(self.manifest)

    @property
    def manifest_json(self) -> dict[str, Any]:
        """The parsed manifest."""
        parsed: dict[str, Any] = json.loads(self.manifest)
        return parsed

    @property
    def blobs(self) -> dict[str, bytes]:
        """Every blob the manifest references (config first, then layers), by digest."""
        return {sha256_digest(blob): blob for blob in [self.config, *self.layers]}


def go_time(moment: datetime) -> str:
    """``moment`` as Go's ``time.Time`` marshals it to JSON (RFC 3339 in UTC, nanosecond digits trimmed)."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def build_artifact(
    layers: Sequence[bytes],
    *,
    layer_media_type: str,
    artifact_type: str,
    title: str | None,
    created: datetime,
    annotations: Mapping[str, str] | None = None,
) -> Artifact:
    """An artifact shaped like ``oras push --artifact-type T`` output.

    Key order follows Go's structs (oras marshals with ``encoding/json``); annotation maps are sorted as Go sorts
    map keys. Every layer gets ``title`` (omitted when None).
    """
    descriptors = []
    for layer in layers:
        descriptor: dict[str, Any] = {
            "mediaType": layer_media_type,
            "digest": sha256_digest(layer),
            "size": len(layer),
        }
        if title is not None:
            descriptor["annotations"] = {ANNOTATION_TITLE: title}
        descriptors.append(descriptor)
    manifest_annotations = {ANNOTATION_CREATED: created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    manifest_annotations.update(annotations or {})
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {
            "mediaType": OCI_EMPTY,
            "digest": sha256_digest(EMPTY_CONFIG),
            "size": len(EMPTY_CONFIG),
            "data": base64.b64encode(EMPTY_CONFIG).decode(),
        },
        "layers": descriptors,
        "annotations": dict(sorted(manifest_annotations.items())),
    }
    body = json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()
    return Artifact(manifest=body, config=EMPTY_CONFIG, layers=list(layers))


def targz(
    files: Sequence[tuple[str, Path | bytes]],
    *,
    mtime: datetime,
    gzip_mtime: int | None = None,
    compresslevel: int = 6,
) -> bytes:
    """A flat, reproducible tar.gz of ``files`` (archive name, path or content) in the given order.

    ``gzip_mtime`` only changes the gzip header, giving a different blob with identical content.
    """
    stamp = int(mtime.timestamp())
    output = io.BytesIO()
    header_mtime = stamp if gzip_mtime is None else gzip_mtime
    with (
        gzip.GzipFile(fileobj=output, mode="wb", compresslevel=compresslevel, mtime=header_mtime) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for name, source in files:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = 0o644, stamp
            if isinstance(source, bytes):
                info.size = len(source)
                tar.addfile(info, io.BytesIO(source))
            else:
                info.size = source.stat().st_size
                with source.open("rb") as handle:
                    tar.addfile(info, handle)
    return output.getvalue()


def _metadata(version: int, updated_at: datetime, next_update: datetime) -> bytes:
    """``metadata.json`` as trivy-db / trivy-java-db publish it (``DownloadedAt`` left at Go's zero time)."""
    fields = {
        "Version": version,
        "NextUpdate": go_time(next_update),
        "UpdatedAt": go_time(updated_at),
        "DownloadedAt": GO_ZERO_TIME,
    }
    return json.dumps(fields, separators=(",", ":")).encode()


def _times(updated_at: datetime | None, next_update: datetime | None) -> tuple[datetime, datetime]:
    updated = updated_at or datetime.now(UTC)
    return updated, next_update or updated + timedelta(hours=24)


class _RandomFiller(Mapping[bytes, bytes]):
    """A bucket of incompressible values totalling ``size`` bytes, each generated when it is read.

    Values are 1 MiB chunks (the last one shorter) from a PRNG seeded by the chunk index, so the DB stays
    reproducible while never holding more than one chunk in memory.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._count = -(-size // _FILLER_CHUNK)

    def __getitem__(self, key: bytes) -> bytes:
        if key not in self:
            raise KeyError(key)
        index = int(key)
        return random.Random(index).randbytes(min(_FILLER_CHUNK, self._size - index * _FILLER_CHUNK))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and len(key) == 8 and key.isdigit() and int(key) < self._count

    def __iter__(self) -> Iterator[bytes]:
        return (b"%08d" % index for index in range(self._count))

    def __len__(self) -> int:
        return self._count


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def vuln_db_buckets(filler_bytes: int = 0) -> dict[bytes, Any]:
    """The buckets of the planted ``trivy.db`` (schema 2), plus an optional filler bucket of random data."""
    pip_source = b"pip::GitHub Security Advisory pip"
    maven_source = b"maven::GitLab Advisories Community"
    advisory = _json({"PatchedVersions": ["2.0.0"], "VulnerableVersions": ["< 2.0.0"]})
    buckets: dict[bytes, Any] = {
        b"data-source": {
            pip_source: _json({"ID": "ghsa", "Name": "GitHub Security Advisory pip", "URL": "https://github.com/advisories"}),
            maven_source: _json({"ID": "glad", "Name": "GitLab Advisories Community", "URL": "https://gitlab.com"}),
        },
        pip_source: {PIP_PACKAGE.encode(): {PIP_CVE.encode(): advisory}},
        maven_source: {f"{MAVEN_GROUP}:{MAVEN_ARTIFACT}".encode(): {MAVEN_CVE.encode(): advisory}},
        b"vulnerability": {
            cve.encode(): _json(
                {
                    "Title": f"Planted test vulnerability in {package}",
                    "Description": "Made up by trivy-mirror's test fixtures; only the test DB knows it.",
                    "Severity": "HIGH",
                    "VendorSeverity": {source: 3},
                    "References": ["https://example.invalid/" + cve],
                    "PublishedDate": "2099-01-01T00:00:00Z",
                    "LastModifiedDate": "2099-01-01T00:00:00Z",
                }
            )
            for cve, package, source in ((PIP_CVE, PIP_PACKAGE, "ghsa"), (MAVEN_CVE, MAVEN_ARTIFACT, "glad"))
        },
    }
    if filler_bytes:
        buckets[FILLER_BUCKET] = _RandomFiller(filler_bytes)
    return buckets


def build_vuln_db(
    *,
    updated_at: datetime | None = None,
    next_update: datetime | None = None,
    schema_version: int = 2,
    layer_media_type: str = DB_LAYER,
    title: str | None = "db.tar.gz",
    layer_count: int = 1,
    filler_bytes: int = 0,
    created: datetime | None = None,
) -> Artifact:
    """The vulnerability DB artifact (``trivy.db`` + ``metadata.json``, flat tar.gz) with the planted CVEs.

    ``updated_at``/``next_update`` default to now and now + 24h; ``created`` (manifest annotation) defaults to
    ``updated_at``. ``layer_count`` > 1 repeats the layer with distinct gzip headers, for a multi-layer artifact
    Trivy must refuse. ``filler_bytes`` of random data in an extra bucket grow the layer by about that much.
    """
    updated, next_ = _times(updated_at, next_update)
    with tempfile.TemporaryDirectory(prefix="trivy-db-") as tmp:
        db_path = Path(tmp, "trivy.db")
        write_bbolt(db_path, vuln_db_buckets(filler_bytes))
        files: list[tuple[str, Path | bytes]] = [
            ("trivy.db", db_path),
            ("metadata.json", _metadata(schema_version, updated, next_)),
        ]
        stamp = int(updated.timestamp())
        # Random filler does not compress: storing it (still a valid gzip stream) builds large layers ~10x faster.
        level = 0 if filler_bytes else 6
        layers = [
            targz(files, mtime=updated, gzip_mtime=stamp + index, compresslevel=level) for index in range(layer_count)
        ]
    return build_artifact(
        layers,
        layer_media_type=layer_media_type,
        artifact_type=TRIVY_ARTIFACT_TYPE,
        title=title,
        created=created or updated,
    )


def build_test_jar() -> bytes:
    """A reproducible jar without ``pom.properties``: Trivy can only identify it by SHA-1 via the Java DB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as jar:
        entries = {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\nCreated-By: trivy-mirror tests\r\n\r\n",
            "org/example/planted/Planted.class": b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + b"planted" * 16,
        }
        for name, content in entries.items():
            jar.writestr(zipfile.ZipInfo(name, date_time=_ZIP_EPOCH), content)
    return buffer.getvalue()


def write_java_db(path: Path, jar: bytes) -> None:
    """Write ``trivy-java-db``'s SQLite schema with one entry mapping ``jar``'s SHA-1 to the planted artifact."""
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE artifacts(id INTEGER PRIMARY KEY, group_id TEXT, artifact_id TEXT);
            CREATE TABLE indices(artifact_id INTEGER, version TEXT, sha1 BLOB, archive_type TEXT,
                                 FOREIGN KEY (artifact_id) REFERENCES artifacts(id));
            CREATE UNIQUE INDEX artifacts_idx ON artifacts(artifact_id, group_id);
            CREATE INDEX indices_artifact_idx ON indices(artifact_id);
            CREATE UNIQUE INDEX indices_sha1_idx ON indices(sha1);
            """
        )
        conn.execute("INSERT INTO artifacts VALUES (1, ?, ?)", (MAVEN_GROUP, MAVEN_ARTIFACT))
        conn.execute(
            "INSERT INTO indices VALUES (1, ?, ?, 'jar')", (MAVEN_VERSION, hashlib.sha1(jar).digest())  # noqa: S324
        )
    conn.close()


def build_java_db(
    *,
    updated_at: datetime | None = None,
    next_update: datetime | None = None,
    schema_version: int = 1,
    layer_media_type: str = JAVA_DB_LAYER,
    title: str | None = "javadb.tar.gz",
    created: datetime | None = None,
) -> Artifact:
    """The Java DB artifact (``trivy-java.db`` + ``metadata.json``) that identifies :func:`build_test_jar`."""
    updated, next_ = _times(updated_at, next_update)
    with tempfile.TemporaryDirectory(prefix="trivy-java-db-") as tmp:
        db_path = Path(tmp, "trivy-java.db")
        write_java_db(db_path, build_test_jar())
        files: list[tuple[str, Path | bytes]] = [
            ("trivy-java.db", db_path),
            ("metadata.json", _metadata(schema_version, updated, next_)),
        ]
        layer = targz(files, mtime=updated)
    return build_artifact(
        [layer],
        layer_media_type=layer_media_type,
        artifact_type=TRIVY_ARTIFACT_TYPE,
        title=title,
        created=created or updated,
    )


def build_checks_bundle(
    *,
    version: str | None = "2.1.0",
    revision: str = "0123456789abcdef0123456789abcdef01234567",
    layer_media_type: str = CHECKS_LAYER,
    title: str | None = "bundle.tar.gz",
    created: datetime | None = None,
) -> Artifact:
    """The checks bundle artifact with the planted check, annotated like a trivy-checks release.

    ``version`` is the ``org.opencontainers.image.version`` annotation (``2.x.y`` for tag ``:2``, ``1.x.y`` for
    ``:1``); None omits it, which Trivy treats as a custom build.
    """
    moment = created or datetime.now(UTC)
    # The OPA bundle manifest upstream's bundle script writes at the root; Trivy 0.59 falls back to its embedded
    # checks without it (TRIVY-ASSETS.md section 14).
    opa_manifest = json.dumps({"revision": revision, "roots": [""]}).encode()
    layer = targz([(".manifest", opa_manifest),
                   (f"policies/docker/policies/{CHECK_ID.lower()}.rego", PLANTED_CHECK.encode())], mtime=moment)
    annotations = {ANNOTATION_REVISION: revision}
    if version is not None:
        annotations[ANNOTATION_VERSION] = version
    return build_artifact(
        [layer],
        layer_media_type=layer_media_type,
        artifact_type=CHECKS_ARTIFACT_TYPE,
        title=title,
        created=moment,
        annotations=annotations,
    )


@dataclass(frozen=True)
class ScanTargets:
    """Directories in which Trivy finds each planted finding."""

    requirements_dir: Path
    """``requirements.txt`` pinning ``requests==1.0.0``: ``trivy fs`` with the DB reports CVE-2099-0001."""
    rootfs_dir: Path
    """A root filesystem holding the test jar: ``trivy rootfs`` with DB and Java DB reports CVE-2099-0002."""
    dockerfile_dir: Path
    """A ``Dockerfile``: ``trivy config`` with the checks bundle reports TEST001."""


def write_scan_targets(root: Path) -> ScanTargets:
    """Create the scan targets under ``root`` and return their paths."""
    targets = ScanTargets(root / "requirements", root / "rootfs", root / "dockerfile")
    targets.requirements_dir.mkdir(parents=True)
    (targets.requirements_dir / "requirements.txt").write_text(f"{PIP_PACKAGE}==1.0.0\n")
    jar_dir = targets.rootfs_dir / "opt" / "app" / "lib"
    jar_dir.mkdir(parents=True)
    (jar_dir / JAR_NAME).write_bytes(build_test_jar())
    targets.dockerfile_dir.mkdir(parents=True)
    (targets.dockerfile_dir / "Dockerfile").write_text("FROM scratch\nCOPY app /app\n")
    return targets


@dataclass(frozen=True)
class AssetSet:
    """Everything a test session scans with: the four upstream artifacts and the scan targets."""

    db: Artifact
    java_db: Artifact
    checks: Artifact
    """Checks bundle for tag ``:2`` (version 2.x.y), what Trivy >= 0.69 pulls."""
    checks_v1: Artifact
    """Checks bundle for tag ``:1`` (version 1.x.y), what older Trivy pulls."""
    targets: ScanTargets

    def upstream_tags(self) -> list[tuple[str, str, Artifact]]:
        """(repository, tag, artifact) as upstream publishes them for Trivy 0.76."""
        return [
            (DB_REPOSITORY, "2", self.db),
            (JAVA_DB_REPOSITORY, "1", self.java_db),
            (CHECKS_REPOSITORY, "2", self.checks),
            (CHECKS_REPOSITORY, "1", self.checks_v1),
        ]


def build_asset_set(targets_root: Path) -> AssetSet:
    """Build the default artifacts and write the scan targets under ``targets_root``."""
    return AssetSet(
        db=build_vuln_db(),
        java_db=build_java_db(),
        checks=build_checks_bundle(version="2.1.0"),
        checks_v1=build_checks_bundle(version="1.9.0"),
        targets=write_scan_targets(targets_root),
    )
