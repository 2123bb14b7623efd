"""``trivy-cache``: a ready-to-use Trivy cache directory, for scanners with no network at all.

Lays the assets out exactly as Trivy leaves them after a download (TRIVY-ASSETS.md 3.4, 4.2, 5.3, 11):
``db/{trivy.db,metadata.json}`` and ``java-db/{trivy-java.db,metadata.json}`` with ``DownloadedAt`` set to now,
so Trivy does not even try to update before ``NextUpdate``; ``policy/content/`` with ``policy/metadata.json``
(``Digest`` is the manifest digest Trivy would compare, ``MajorVersion`` from the version annotation). Layers
are re-verified and unpacked with the hostile-archive checks, into a staging directory inside the cache dir;
each finished component then replaces the old one by rename, so Trivy never sees half a database.
Each VEX repository goes to ``vex/repositories/NAME/{vex-repository.json,cache.json,0.1/}``, with a
``vex/repository.yaml`` to install in Trivy's home (which is where Trivy reads the list of repositories).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tarfile
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from trivy_mirror.bundle.safety import check_member
from trivy_mirror.catalog import policy
from trivy_mirror.catalog.assets import AssetSpec
from trivy_mirror.catalog.layerinfo import MAX_METADATA_SIZE, METADATA_FILE, LayerInfoError, parse_metadata
from trivy_mirror.chunks import CHUNK_SIZE
from trivy_mirror.errors import RefusedCandidate, StoreError, UnsafeMember, VerificationError
from trivy_mirror.fsutil import os_errors
from trivy_mirror.oci import mediatype
from trivy_mirror.oci.digest import Digest, DigestVerifier
from trivy_mirror.oci.manifest import Descriptor, Manifest
from trivy_mirror.store import Store
from trivy_mirror.timefmt import go_time, iso
from trivy_mirror.vex.manifest import RepositoryManifest
from trivy_mirror.vex.serve import archive_url, repository_url
from trivy_mirror.vex.source import DEFAULT_URL as DEFAULT_VEX_URL
from trivy_mirror.vex.status import ASSET as VEX_ASSET
from trivy_mirror.vex.status import reference as vex_reference
from trivy_mirror.vex.storage import VexRepository, stored_names

DB_LAYOUT = {"db": ("db", "trivy.db"), "java-db": ("java-db", "trivy-java.db")}
"""Asset -> (cache sub-directory, DB file name), as Trivy's ``db.Dir`` and ``javadb`` place them."""
SKIP_FLAGS = {"db": "--skip-db-update", "java-db": "--skip-java-db-update", "checks": "--skip-check-update",
              VEX_ASSET: "--skip-vex-repo-update"}
POLICY_DIR = "policy"
VEX_REPOSITORIES = "vex/repositories"
VEX_CONFIG = "vex/repository.yaml"
VEX_MANIFEST = "vex-repository.json"
VEX_SPEC_VERSION = "0.1"


@dataclass(frozen=True)
class CacheComponent:
    """One directory written into the cache, and what it holds."""

    asset: str
    directory: str
    reference: str
    digest: str
    summary: str
    url: str | None = None
    """A VEX repository's upstream URL, for ``repository.yaml``."""


class _VerifyingReader:
    """Reads the stored layer through a digest check: a damaged store is reported, not unpacked."""

    def __init__(self, path: Path, layer: Descriptor) -> None:
        self._file = path.open("rb")
        self.verifier = DigestVerifier(layer.digest, layer.size)

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.verifier.update(data)
        return data

    def finish(self) -> None:
        while self.read(CHUNK_SIZE):
            pass
        self.verifier.verify()

    def close(self) -> None:
        self._file.close()


def extract_layer(path: Path, layer: Descriptor, destination: Path, what: str) -> None:
    """Unpack a stored tar.gz layer into ``destination``: regular files and directories only, nothing outside."""
    destination.mkdir(parents=True, exist_ok=True)
    reader = _VerifyingReader(path, layer)
    try:
        with tarfile.open(fileobj=reader, mode="r|gz", bufsize=CHUNK_SIZE) as archive:  # type: ignore[call-overload]
            for member in archive:
                target = destination / check_member(member, f"{what} member")
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                assert source is not None  # a regular file, checked above
                try:
                    with target.open("xb") as out:
                        shutil.copyfileobj(source, out, CHUNK_SIZE)
                except FileExistsError:
                    raise UnsafeMember(f"{what} has the member {member.name[:200]!r} twice; refusing it") from None
        reader.finish()
    except VerificationError as err:
        raise StoreError(f"store is damaged: the {what} layer ({path}) does not match: {err}") from None
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise StoreError(f"the {what} layer in the store ({path}) is not a readable tar.gz: {err}") from None
    finally:
        reader.close()


class TrivyCacheWriter:
    """Writes the selected assets from ``store`` into the Trivy cache directory ``cache_dir``."""

    def __init__(self, store: Store, cache_dir: Path, now: datetime | None = None, mirror: str | None = None) -> None:
        """``mirror``: the serve URL clients reach; VEX entries then name it instead of the upstream, so a Trivy
        whose ``update_interval`` passed asks the mirror (and gets a 304 when nothing changed) instead of the
        internet."""
        self.store = store
        self.cache_dir = cache_dir
        self.now = now or datetime.now(UTC)
        self.mirror = mirror.rstrip("/") if mirror else None

    def write(self, specs: Sequence[AssetSpec], vex: bool | None = None) -> list[CacheComponent]:
        """Build every component in a staging directory, then swap each into place (blocking: use a thread).

        ``vex``: True for every VEX repository of the store (at least one), None for those there are, False
        for none.
        """
        with os_errors(f"create {self.cache_dir}"):
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = self.cache_dir / f".trivy-mirror-{uuid.uuid4().hex}"
        try:
            with os_errors(f"write the Trivy cache in {self.cache_dir}"):
                staging.mkdir()
                components = [self._component(spec, staging) for spec in specs]
                if vex is not False:
                    components += self._vex_components(staging, required=bool(vex))
                trash = staging / ".replaced"
                trash.mkdir()
                for component in components:
                    current = self.cache_dir / component.directory
                    current.parent.mkdir(parents=True, exist_ok=True)
                    if current.exists():
                        os.replace(current, trash / component.directory.replace("/", "_"))
                    os.replace(staging / component.directory, current)
                vex_components = [c for c in components if c.asset == VEX_ASSET]
                if vex_components:
                    write_vex_config(self.cache_dir / VEX_CONFIG, vex_components)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return components

    def _vex_components(self, staging: Path, *, required: bool) -> list[CacheComponent]:
        """``vex/repositories/NAME/{vex-repository.json,cache.json,0.1/}`` as Trivy's VEX client leaves them."""
        components = []
        for name in stored_names(self.store.root):
            repository = VexRepository(self.store.root, name)
            state = repository.load()
            current = state.current
            if current is None or state.manifest is None or not repository.has_blob(current.digest):
                continue
            directory = f"{VEX_REPOSITORIES}/{name}"
            archive = Descriptor("application/gzip", Digest.parse(current.digest), current.size)
            extract_layer(repository.blob_path(current.digest), archive, staging / directory / VEX_SPEC_VERSION,
                          f"VEX repository {name}")
            location, etags, url = current.location, {}, state.url
            if self.mirror is not None:
                location, url = archive_url(self.mirror, name), repository_url(self.mirror, name)
                etags = {location: f'"{current.digest}"'}  # the mirror's ETag: a later check may get a 304
            try:
                manifest = RepositoryManifest.from_json(state.manifest).served(location)
            except RefusedCandidate as err:
                raise StoreError(f"{vex_reference(name)} in the store: {err}") from None
            (staging / directory / VEX_MANIFEST).write_text(json.dumps(manifest, indent=2))
            cache = {"UpdatedAt": go_time(self.now), "ETags": etags}
            (staging / directory / "cache.json").write_text(json.dumps(cache, separators=(",", ":")))
            components.append(CacheComponent(
                VEX_ASSET, directory, vex_reference(name), current.digest,
                f"{current.documents} documents, index updated {iso(current.index_updated_at) or 'at an unknown time'}",
                url))
        if required and not components:
            raise StoreError(f"the store {self.store.root} has no VEX repository; sync one first, or leave vex out "
                             f"of --assets")
        return components

    def _component(self, spec: AssetSpec, staging: Path) -> CacheComponent:
        layout = self.store.layout(spec.mirror_repository)
        tag = spec.tags[0].tag
        reference = f"{spec.mirror_repository}:{tag}"
        manifest = layout.read_manifest(tag)
        if manifest is None:
            raise StoreError(f"the store {self.store.root} has no {reference}; run trivy-mirror sync first, or "
                             f"leave {spec.name} out with --assets")
        parsed = manifest.parsed
        layer = policy.check_shape(spec, parsed)
        assert isinstance(parsed, Manifest)
        blob = layout.blob_path(layer.digest)
        if spec.has_metadata:
            directory = DB_LAYOUT[spec.name][0]
            extract_layer(blob, layer, staging / directory, spec.name)
            summary = self._stamp_db(spec, tag, parsed, staging / directory)
        else:
            directory = POLICY_DIR
            extract_layer(blob, layer, staging / directory / "content", spec.name)
            summary = self._stamp_checks(parsed, str(manifest.digest), staging / directory)
        return CacheComponent(spec.name, directory, reference, str(manifest.digest), summary)

    def _stamp_db(self, spec: AssetSpec, tag: str, parsed: Manifest, directory: Path) -> str:
        """Check the unpacked DB as Trivy will, and set ``DownloadedAt`` as Trivy does after a download."""
        db_file, metadata_file = directory / DB_LAYOUT[spec.name][1], directory / METADATA_FILE
        if not db_file.is_file() or not metadata_file.is_file():
            raise StoreError(f"{spec.name}: the layer has no {db_file.name} and {METADATA_FILE} at its root; "
                             f"Trivy could not use it")
        data = metadata_file.read_bytes()
        try:
            if len(data) > MAX_METADATA_SIZE:
                raise LayerInfoError(f"{METADATA_FILE} is {len(data)} bytes")
            metadata = parse_metadata(data)
            policy.check_version(spec, tag, parsed, metadata)
            fields = json.loads(data)
        except LayerInfoError as err:
            raise StoreError(f"{spec.name}: {err}") from None
        fields["DownloadedAt"] = go_time(self.now)
        metadata_file.write_text(json.dumps(fields, separators=(",", ":")))
        return f"UpdatedAt {iso(metadata.updated_at)}, NextUpdate {iso(metadata.next_update) or 'unset'}"

    def _stamp_checks(self, parsed: Manifest, digest: str, directory: Path) -> str:
        """``policy/metadata.json`` as Trivy writes it (``policy.Metadata``)."""
        major = policy.checks_major_version(parsed)
        fields: dict[str, object] = {"Digest": digest, "DownloadedAt": go_time(self.now)}
        if major is None:
            fields.update(MajorVersion=0, CustomBuild=True)
        else:
            fields["MajorVersion"] = major
        (directory / "metadata.json").write_text(json.dumps(fields, separators=(",", ":")))
        version = parsed.annotations.get(mediatype.ANNOTATION_VERSION)
        return f"version {version}" if version else "custom build (no version annotation)"


def write_vex_config(path: Path, components: Sequence[CacheComponent]) -> None:
    """The ``repository.yaml`` that enables these repositories (Trivy reads it from its home, not the cache)."""
    repositories: list[dict[str, object]] = [
        {"name": c.directory.rsplit("/", 1)[1], "url": c.url or DEFAULT_VEX_URL, "enabled": True} for c in components]
    repositories.append({"name": "default", "url": DEFAULT_VEX_URL, "enabled": False})
    header = ("# Trivy's VEX repository list for this cache: copy it to $HOME/.trivy/vex/repository.yaml (or\n"
              "# $XDG_DATA_HOME/.trivy/vex/repository.yaml) and scan with --vex repo --skip-vex-repo-update.\n")
    path.write_text(header + yaml.safe_dump({"repositories": repositories}, sort_keys=False))


def trivy_command(cache_dir: Path, components: Sequence[CacheComponent]) -> str:
    """The Trivy command line that scans with this cache and never reaches for the network."""
    args = ["trivy", "image", "--cache-dir", str(cache_dir)]
    args += list(dict.fromkeys(SKIP_FLAGS[c.asset] for c in components if c.asset in SKIP_FLAGS))
    if any(c.asset == VEX_ASSET for c in components):
        args += ["--vex", "repo"]
    args += ["--offline-scan", "--skip-version-check", "--disable-telemetry", "IMAGE"]
    return shlex.join(args)
