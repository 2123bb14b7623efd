"""A well-formed Trivy DB artifact of any size, built by streaming to disk (never held in memory).

The layer is a flat tar.gz holding ``trivy.db`` (random bytes) then ``metadata.json`` (Version 2, UpdatedAt,
NextUpdate as trivy-db publishes them), in the order upstream uses: a reader must get through the whole DB to
find the metadata. Random data does not compress, so the gzip stream uses stored deflate blocks (level 0): the
same layer size and the same decompression work as level 6 would give, built in seconds instead of a minute.
The manifest is shaped like ``oras push`` output (artifactType, empty config with inline data, titled layer).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DB_LAYER = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
TRIVY_ARTIFACT_TYPE = "application/vnd.aquasec.trivy.config.v1+json"
EMPTY_CONFIG = b"{}"
_RANDOM_CHUNK = 4 << 20
_TAR_OVERHEAD = 16 * 1024  # headers, metadata.json and end-of-archive blocks, roughly


@dataclass(frozen=True)
class BigArtifact:
    layer_path: Path
    layer_digest: str
    layer_size: int
    config: bytes
    manifest: bytes

    @property
    def config_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()

    @property
    def manifest_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()


class _RandomReader(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = self.left if size < 0 else min(size, self.left)
        data = os.urandom(min(want, _RANDOM_CHUNK))
        self.left -= len(data)
        return data


class _HashingWriter(io.RawIOBase):
    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.hash.update(data)
        self.size += len(data)
        return self.file.write(data)


def _go_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build(directory: Path, size: int) -> BigArtifact:
    """Build (or reuse, when already built for ``size``) the artifact under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    info_path = directory / "artifact.json"
    layer_path = directory / "db.tar.gz"
    if info_path.exists() and layer_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("requested_size") == size and layer_path.stat().st_size == info["layer_size"]:
            return BigArtifact(layer_path, info["layer_digest"], info["layer_size"],
                               EMPTY_CONFIG, base64.b64decode(info["manifest"]))
    updated = datetime.now(UTC).replace(microsecond=0)
    stamp = int(updated.timestamp())
    metadata = json.dumps({"Version": 2, "NextUpdate": _go_time(updated + timedelta(hours=24)),
                           "UpdatedAt": _go_time(updated), "DownloadedAt": "0001-01-01T00:00:00Z"},
                          separators=(",", ":")).encode()
    db_size = max(1024, size - _TAR_OVERHEAD)
    with layer_path.open("wb") as raw:
        sink = _HashingWriter(raw)
        with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=0, mtime=stamp) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT, copybufsize=_RANDOM_CHUNK) as tar:
            for name, length, source in (("trivy.db", db_size, _RandomReader(db_size)),
                                         ("metadata.json", len(metadata), io.BytesIO(metadata))):
                member = tarfile.TarInfo(name)
                member.mode, member.mtime, member.size = 0o644, stamp, length
                tar.addfile(member, source)  # type: ignore[arg-type]
        layer_digest, layer_size = "sha256:" + sink.hash.hexdigest(), sink.size
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": TRIVY_ARTIFACT_TYPE,
        "config": {"mediaType": OCI_EMPTY, "digest": "sha256:" + hashlib.sha256(EMPTY_CONFIG).hexdigest(),
                   "size": len(EMPTY_CONFIG), "data": base64.b64encode(EMPTY_CONFIG).decode()},
        "layers": [{"mediaType": DB_LAYER, "digest": layer_digest, "size": layer_size,
                    "annotations": {"org.opencontainers.image.title": "db.tar.gz"}}],
        "annotations": {"org.opencontainers.image.created": _go_time(updated)},
    }, separators=(",", ":")).encode()
    info_path.write_text(json.dumps({"requested_size": size, "layer_digest": layer_digest, "layer_size": layer_size,
                                     "manifest": base64.b64encode(manifest).decode()}))
    return BigArtifact(layer_path, layer_digest, layer_size, EMPTY_CONFIG, manifest)
